"""Unit tests of xla_scorer with plain Python: `python3 -m unittest discover -s tests`
from sdk/python (`cargo xtask test` runs them)."""

import unittest

from xla_scorer import (
    U64_MAX,
    BadDataError,
    Bands,
    Field,
    HistogramError,
    ParameterError,
    bands_of,
    parse_parameters,
)

FIELDS = {"metric": Field("string", "happiness_rating"), "min_sample": Field("u64", 1)}


def histogram(**counts: int) -> list:
    slots = [0] * 11
    for score, count in counts.items():
        slots[int(score.lstrip("s"))] = count
    return slots


class HappinessTest(unittest.TestCase):
    def test_76_positive_and_24_negative_give_plus_52(self):
        bands = Bands.from_histogram(histogram(s10=40, s9=36, s3=20, s0=4))
        self.assertEqual(bands.happiness(), 52.0)
        self.assertEqual(bands.share(bands.positive), 76.0)
        self.assertEqual(bands.detail(), '{"positive":76,"neutral":0,"negative":24}')

    def test_only_neutral_ratings_give_zero(self):
        self.assertEqual(Bands.from_histogram(histogram(s7=12, s8=30)).happiness(), 0.0)

    def test_no_responses_give_no_score(self):
        bands = Bands.from_histogram(histogram())
        self.assertIsNone(bands.happiness())
        self.assertIsNone(bands.share(0))

    def test_a_histogram_without_11_counts_is_refused(self):
        with self.assertRaises(HistogramError):
            Bands.from_histogram([1, 2, 3])
        with self.assertRaises(HistogramError):
            Bands.from_histogram(histogram(s10=U64_MAX, s0=1))

    def test_bad_data_names_the_metric_and_the_group(self):
        with self.assertRaisesRegex(BadDataError, "`happiness_rating` for group `VPN` has no histogram"):
            bands_of("happiness_rating", "VPN", None)
        with self.assertRaisesRegex(BadDataError, "for the whole window has a histogram of 3 counts; expected 11"):
            bands_of("happiness_rating", None, [1, 2, 3])


class ParametersTest(unittest.TestCase):
    def test_blank_means_every_default(self):
        self.assertEqual(parse_parameters("  ", FIELDS), {"metric": "happiness_rating", "min_sample": 1})
        self.assertEqual(parse_parameters("{}", FIELDS), {"metric": "happiness_rating", "min_sample": 1})
        self.assertEqual(parse_parameters('{"min_sample":5}', FIELDS)["min_sample"], 5)

    def test_messages_match_the_rust_sdk(self):
        cases = {
            '{"min_sample":-1}': "config field `min_sample`: invalid value: integer `-1`, expected u64",
            '{"min_sample":"5"}': 'config field `min_sample`: invalid type: string "5", expected u64',
            '{"min_sample":1.5}': "config field `min_sample`: invalid type: floating point `1.5`, expected u64",
            '{"min_sample":1e3}': "config field `min_sample`: invalid type: floating point `1000.0`, expected u64",
            '{"min_sample":true}': "config field `min_sample`: invalid type: boolean `true`, expected u64",
            '{"min_sample":null}': "config field `min_sample`: invalid type: null, expected u64",
            '{"min_sample":[1]}': "config field `min_sample`: invalid type: sequence, expected u64",
            '{"metric":{"a":1}}': "config field `metric`: invalid type: map, expected a string",
            '{"metric":5}': "config field `metric`: invalid type: integer `5`, expected a string",
            '{"min_samples":5}': "config field `min_samples`: unknown field `min_samples`, "
            "expected `metric` or `min_sample`",
            '{"metric":"a","metric":"b"}': "config: duplicate field `metric`",
            "[]": "config: expected a JSON object",
        }
        for text, message in cases.items():
            with self.subTest(text=text):
                with self.assertRaises(ParameterError) as raised:
                    parse_parameters(text, FIELDS)
                self.assertEqual(raised.exception.message, message)

    def test_json_without_nan_or_infinity(self):
        with self.assertRaisesRegex(ParameterError, "^config: "):
            parse_parameters('{"min_sample":NaN}', FIELDS)


if __name__ == "__main__":
    unittest.main()
