"""`happiness-py`: the Python twin of the Rust scorer `plugins/happiness`.

Happiness per group is the share of ratings 9-10 minus the share of ratings
0-6, in percent (-100..+100), read from the 0-10 histogram the host gives on
aggregates of a rating metric. Beside it come `positive_share`,
`neutral_share` and `negative_share`. Same parameters, same results (bit for
bit) and same error messages as the Rust scorer: `tests/all/python.rs`
compares the two.

Built with `cargo xtask build-python` (componentize-py); see
`sdk/python/README.md`.
"""

from typing import List, Optional

import wit_world
from componentize_py_types import Err
from wit_world.exports import scorer
from wit_world.imports import rows, types

import xla_scorer
from xla_scorer import BadDataError, Field, ParameterError

NAME = "happiness-py"
VERSION = "0.1.0"
DEFAULT_METRIC = "happiness_rating"

# Module-level code runs once, at build time; the component starts from a
# snapshot taken after it. The schema is read from beside this file then, and
# the scorer never touches a file when it runs (it could not: it has none).
with open(__file__.rsplit("/", 1)[0] + "/parameters.schema.json", encoding="utf-8") as schema_file:
    PARAMETERS_SCHEMA = schema_file.read()

PARAMETERS = {
    "metric": Field("string", DEFAULT_METRIC),
    "min_sample": Field("u64", 1),
}
EXAMPLE = '{"metric":"happiness_rating","min_sample":5}'

DESCRIPTION = (
    "Happiness per group: % of ratings 9-10 minus % of ratings 0-6 (-100..+100), "
    "from the 0-10 histogram of a rating metric (parameter `metric`, default "
    "`happiness_rating`); also `positive_share`, `neutral_share` and "
    "`negative_share` in percent. Groups with fewer than `min_sample` responses "
    "get no score."
)


class Scorer(wit_world.exports.Scorer):
    """The exported `scorer` interface."""

    def describe(self) -> scorer.ScorerInfo:
        return scorer.ScorerInfo(
            name=NAME,
            version=VERSION,
            description=DESCRIPTION,
            parameters_schema=PARAMETERS_SCHEMA,
            metrics=[DEFAULT_METRIC],
            needs_rows=False,
        )

    def score(self, input: scorer.ScoreInput, rows: Optional[rows.RowReader]) -> List[scorer.ScoreResult]:
        try:
            return score(input)
        except ParameterError as error:
            raise Err(types.PluginError_Config(error.message))
        except BadDataError as error:
            raise Err(types.PluginError_BadData(error.message))


def score(input: scorer.ScoreInput) -> List[scorer.ScoreResult]:
    parameters = xla_scorer.parse_parameters(input.parameters, PARAMETERS, EXAMPLE)
    if not parameters["metric"]:
        raise ParameterError("config field `metric`: must name a 0-10 rating metric, e.g. `happiness_rating`")
    results: List[scorer.ScoreResult] = []
    for aggregate in input.aggregates:
        if aggregate.metric != parameters["metric"]:
            continue
        bands = xla_scorer.bands_of(aggregate.metric, aggregate.group, aggregate.histogram)
        # An empty group has no happiness, whatever `min_sample` says.
        if bands.total == 0 or bands.total < parameters["min_sample"]:
            continue
        results.extend(scores_of(aggregate.group, bands))
    return results


def scores_of(group: Optional[str], bands: xla_scorer.Bands) -> List[scorer.ScoreResult]:
    """`happiness` (with the band counts as detail) and the three shares."""

    def result(name: str, value: Optional[float], detail: Optional[str] = None) -> scorer.ScoreResult:
        assert value is not None, "bands with responses always have a value"
        return scorer.ScoreResult(name=name, group=group, value=value, sample_size=bands.total, detail=detail)

    return [
        result("happiness", bands.happiness(), bands.detail()),
        result("positive_share", bands.share(bands.positive)),
        result("neutral_share", bands.share(bands.neutral)),
        result("negative_share", bands.share(bands.negative)),
    ]
