"""prometheus.yml generation and scrape-target checks (pure)."""

from __future__ import annotations

import pytest
import yaml

from orchestrator.core.errors import InfrastructureError
from orchestrator.core.safety import LOCAL_RUN
from orchestrator.prometheus.config import ScrapeJob, ScrapeTarget, render_config, validate_jobs


def test_render_config_exact() -> None:
    jobs = [
        ScrapeJob(
            "maptarget",
            [
                ScrapeTarget("198.18.4.2:8080", {"target": "cache", "replica": "0"}),
                ScrapeTarget("198.18.4.3:8080", {"target": "cache", "replica": "1"}),
            ],
        ),
        ScrapeJob("locust", [ScrapeTarget("127.0.0.1:9646", {"worker": "0"})], metrics_path="/m"),
    ]
    config = yaml.safe_load(render_config(jobs, allowed=LOCAL_RUN, external_labels={"mapquake_run": "0a1b2c3d"}))
    assert config == {
        "global": {
            "scrape_interval": "1s",
            "scrape_timeout": "1s",
            "evaluation_interval": "1s",
            "external_labels": {"mapquake_run": "0a1b2c3d"},
        },
        "scrape_configs": [
            {
                "job_name": "maptarget",
                "metrics_path": "/metrics",
                "static_configs": [
                    {"targets": ["198.18.4.2:8080"], "labels": {"target": "cache", "replica": "0"}},
                    {"targets": ["198.18.4.3:8080"], "labels": {"target": "cache", "replica": "1"}},
                ],
            },
            {
                "job_name": "locust",
                "metrics_path": "/m",
                "static_configs": [{"targets": ["127.0.0.1:9646"], "labels": {"worker": "0"}}],
            },
        ],
    }


def test_render_config_interval_is_configurable() -> None:
    text = render_config([ScrapeJob("a", [ScrapeTarget("localhost:1")])], scrape_interval="5s")
    assert yaml.safe_load(text)["global"]["scrape_timeout"] == "5s"


def test_every_problem_is_listed() -> None:
    jobs = [
        ScrapeJob("dup", [ScrapeTarget("127.0.0.1:80")]),
        ScrapeJob("dup", []),
        ScrapeJob(
            "bad",
            [
                ScrapeTarget("10.0.0.1:80"),
                ScrapeTarget("example.com:80"),
                ScrapeTarget("127.0.0.1"),
                ScrapeTarget("127.0.0.1:70000"),
                ScrapeTarget("198.18.0.2:80", {"__x": "1", "job": "j", "ok_label": "v", "bad-label": "v"}),
                ScrapeTarget("[::1]:80"),
            ],
        ),
    ]
    assert validate_jobs(jobs, LOCAL_RUN) == [
        "job name 'dup' is empty or repeated",
        "job 'dup' has no targets",
        "job 'bad': target '10.0.0.1:80' is outside loopback or 198.18.0.0/15",
        "job 'bad': target 'example.com:80' is outside loopback or 198.18.0.0/15",
        "job 'bad': target '127.0.0.1' is not host:port",
        "job 'bad': target '127.0.0.1:70000' is not host:port",
        "job 'bad': label name '__x' is not allowed",
        "job 'bad': label name 'job' is not allowed",
        "job 'bad': label name 'bad-label' is not allowed",
    ]
    with pytest.raises(InfrastructureError, match="outside loopback"):
        render_config(jobs, allowed=LOCAL_RUN)


def test_the_backend_list_decides() -> None:
    """The same run-node address is refused when the backend allows only loopback."""
    jobs = [ScrapeJob("t", [ScrapeTarget("198.18.0.2:80")])]
    assert validate_jobs(jobs, LOCAL_RUN) == []
    assert validate_jobs(jobs) == ["job 't': target '198.18.0.2:80' is outside loopback"]
