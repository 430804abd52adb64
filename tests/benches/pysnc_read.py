"""Reads every incident from a ServiceNow instance with pysnc, ServiceNow's
own Python client, and prints how many records it read and in how long.

Used by `cargo bench -p xla-tests --bench servicenow` as the peer of the
Wasm connector. Usage: pysnc_read.py URL USER PASSWORD FIELDS BATCH_SIZE
"""

import sys
import time

import pysnc.client
from pysnc import ServiceNowClient

# pysnc insists on https; the simulator serves plain http on loopback, as it
# does for the Wasm connector it is compared with. Nothing else is changed.
pysnc.client.get_instance = lambda instance: instance.rstrip("/")

url, user, password, fields, batch_size = sys.argv[1:6]
client = ServiceNowClient(url, (user, password))
records = client.GlideRecord("incident", batch_size=int(batch_size))
records.fields = fields.split(",")
# The same shape of answer the connector asks for: stored values, bare sys_ids.
records.display_value = False
records.exclude_reference_link = True

started = time.perf_counter()
records.query()
count = 0
for _ in records:
    count += 1
print(count, time.perf_counter() - started)
