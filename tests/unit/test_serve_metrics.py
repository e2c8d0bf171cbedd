"""The metrics text and the JSON log lines, without a server: Prometheus' own parser reads the text, and
a JSON line hides what the secret rule hides."""

from __future__ import annotations

import json
import logging

from prometheus_client.parser import text_string_to_metric_families

from scraper.serve._metrics import Metrics
from scraper.serve._reqlog import REQUEST_ID, JsonFormatter


def test_histogram_buckets_are_cumulative_and_labels_are_escaped():
    metrics = Metrics()
    for seconds in (0.003, 0.2, 0.2, 500.0):
        metrics.first_chunk_after(seconds)
    metrics.chat_ended("served", 'odd"plugin\\name')
    families = {f.name: f for f in text_string_to_metric_families(metrics.render({"scraper_pages_open": ("p", 3)}))}
    buckets = {s.labels["le"]: s.value for s in families["scraper_first_chunk_seconds"].samples if "le" in s.labels}
    assert buckets["0.005"] == 1 and buckets["0.25"] == 3 and buckets["120"] == 3 and buckets["+Inf"] == 4
    (chats,) = families["scraper_chats"].samples
    assert chats.labels == {"outcome": "served", "plugin": 'odd"plugin\\name'} and chats.value == 1
    assert families["scraper_pages_open"].samples[0].value == 3


def test_a_json_log_line_carries_the_request_id_and_hides_secrets():
    record = logging.LogRecord("scraper.serve", logging.INFO, __file__, 1, 'page said nonce="9f8e7d6c5b"', None, None)
    token = REQUEST_ID.set("abc123")
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        REQUEST_ID.reset(token)
    assert line["request_id"] == "abc123" and line["level"] == "info" and line["logger"] == "scraper.serve"
    assert "9f8e7d6c5b" not in line["message"] and "[secret]" in line["message"]
