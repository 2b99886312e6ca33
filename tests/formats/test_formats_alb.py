"""ALB access logs: every example entry of the AWS documentation, older and newer field counts,
the quote-aware scanner, IPv6 clients, -1 processing times and the formatter."""

from __future__ import annotations

import pytest

from logharbor.formats import build_parser
from logharbor.formats.alb import ALB_FIELDS, format_alb_line, parse_alb
from logharbor.record import normalize, parse_timestamp


def normalized(raw: dict) -> dict:
    """normalize() a parser's raw record: raises if the parser produced something invalid."""
    return normalize(raw, received_ns=1_800_000_000_000_000_000)

# The seven example entries of "Access logs for your Application Load Balancer" (AWS ELB user
# guide, current 33-field format), each joined onto one line as ALB writes them.
AWS_EXAMPLES = {
    "http": 'http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-" "10.0.0.1:80" "200" "-" "-" TID_1234abcd5678ef90 "-" "-" "-"',
    "https": 'https 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.086 0.048 0.037 200 200 0 57 "GET https://www.example.com:443/ HTTP/1.1" "curl/7.46.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337281-1d84f3d73c47ec4e58577259" "www.example.com" "arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012" 1 2018-07-02T22:22:48.364000Z "authenticate,forward" "-" "-" "10.0.0.1:80" "200" "-" "-" TID_1234abcd5678ef90 "m.example.com" "-" "TransformSuccess"',
    "h2": 'h2 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 10.0.1.252:48160 10.0.0.66:9000 0.000 0.002 0.000 200 200 5 257 "GET https://10.0.2.105:773/ HTTP/2.0" "curl/7.46.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337327-72bd00b0343d75b906739c42" "-" "-" 1 2018-07-02T22:22:48.364000Z "redirect" "https://example.com:80/" "-" "10.0.0.66:9000" "200" "-" "-" TID_1234abcd5678ef90 "-" "-" "-"',
    "ws": 'ws 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 10.0.0.140:40914 10.0.1.192:8010 0.001 0.003 0.000 101 101 218 587 "GET http://10.0.0.30:80/ HTTP/1.1" "-" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337364-23a8c76965a2ef7629b185e3" "-" "-" 1 2018-07-02T22:22:48.364000Z "forward" "-" "-" "10.0.1.192:8010" "101" "-" "-" TID_1234abcd5678ef90 "-" "-" "-"',
    "wss": 'wss 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 10.0.0.140:44244 10.0.0.171:8010 0.000 0.001 0.000 101 101 218 786 "GET https://10.0.0.30:443/ HTTP/1.1" "-" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337364-23a8c76965a2ef7629b185e3" "-" "-" 1 2018-07-02T22:22:48.364000Z "forward" "-" "-" "10.0.0.171:8010" "101" "-" "-" TID_1234abcd5678ef90 "-" "-" "-"',
    "lambda_ok": 'http 2018-11-30T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 - 0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337364-23a8c76965a2ef7629b185e3" "-" "-" 0 2018-11-30T22:22:48.364000Z "forward" "-" "-" "-" "-" "-" "-" TID_1234abcd5678ef90 "-" "-" "-"',
    "lambda_failed": 'http 2018-11-30T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 - 0.000 0.001 0.000 502 - 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337364-23a8c76965a2ef7629b185e3" "-" "-" 0 2018-11-30T22:22:48.364000Z "forward" "-" "LambdaInvalidResponse" "-" "-" "-" "-" TID_1234abcd5678ef90 "-" "-" "-"',
}
# expected: (status, client, target_ip, method, path, protocol, user agent, trace id, duration_ms)
EXPECTED = {
    "http": (200, "192.168.131.39", "10.0.0.1", "GET", "/", "HTTP/1.1", "curl/7.46.0",
             "5833726236d228ad5d99923122bbe354", 1.0),
    "https": (200, "192.168.131.39", "10.0.0.1", "GET", "/", "HTTP/1.1", "curl/7.46.0",
              "583372811d84f3d73c47ec4e58577259", 171.0),
    "h2": (200, "10.0.1.252", "10.0.0.66", "GET", "/", "HTTP/2.0", "curl/7.46.0",
           "5833732772bd00b0343d75b906739c42", 2.0),
    "ws": (101, "10.0.0.140", "10.0.1.192", "GET", "/", "HTTP/1.1", None,
           "5833736423a8c76965a2ef7629b185e3", 4.0),
    "wss": (101, "10.0.0.140", "10.0.0.171", "GET", "/", "HTTP/1.1", None,
            "5833736423a8c76965a2ef7629b185e3", 1.0),
    "lambda_ok": (200, "192.168.131.39", None, "GET", "/", "HTTP/1.1", "curl/7.46.0",
                  "5833736423a8c76965a2ef7629b185e3", 1.0),
    "lambda_failed": (502, "192.168.131.39", None, "GET", "/", "HTTP/1.1", "curl/7.46.0",
                      "5833736423a8c76965a2ef7629b185e3", 1.0),
}


@pytest.mark.parametrize("name", sorted(AWS_EXAMPLES))
def test_aws_documentation_examples(name: str) -> None:
    raw = build_parser("alb").parse(AWS_EXAMPLES[name])
    assert "parse_error" not in raw
    status, client, target, method, path, protocol, agent, trace, duration = EXPECTED[name]
    rec = normalized(raw)
    assert rec["source"] == "alb"
    assert rec["timestamp"] == parse_timestamp(AWS_EXAMPLES[name].split(" ")[1])
    assert rec["http"]["status"] == status
    assert rec["http"]["client_ip"] == client
    assert rec["attributes"].get("target_ip") == target
    assert rec["http"]["method"] == method and rec["http"]["path"] == path
    assert rec["attributes"]["protocol"] == protocol
    assert rec["http"].get("user_agent") == agent
    assert rec["trace_id"] == trace
    assert rec["http"]["duration_ms"] == pytest.approx(duration)
    assert rec["level"] == ("ERROR" if status >= 500 else "INFO")
    assert rec["attributes"]["conn_trace_id"] == "TID_1234abcd5678ef90"
    assert "extra_fields" not in rec["attributes"]


def test_https_example_fields() -> None:
    raw = parse_alb(AWS_EXAMPLES["https"])
    assert raw["ssl_cipher"] == "ECDHE-RSA-AES128-GCM-SHA256" and raw["ssl_protocol"] == "TLSv1.2"
    assert raw["domain_name"] == "www.example.com"
    assert raw["chosen_cert_arn"].startswith("arn:aws:acm:us-east-2")
    assert raw["actions_executed"] == "authenticate,forward"
    assert raw["matched_rule_priority"] == 1
    assert raw["request_creation_time"] == "2018-07-02T22:22:48.364000Z"
    assert raw["transformed_host"] == "m.example.com"
    assert raw["request_transform_status"] == "TransformSuccess"
    assert "transformed_uri" not in raw  # "-" means absent
    assert raw["request_processing_ms"] == 86.0
    assert raw["target_processing_ms"] == 48.0
    assert raw["response_processing_ms"] == 37.0
    assert raw["url"] == "https://www.example.com:443/"
    assert raw["client_port"] == 2817 and raw["target_port"] == 80
    assert raw["received_bytes"] == 0 and raw["http"]["bytes_sent"] == 57
    assert raw["target_port_list"] == "10.0.0.1:80" and raw["target_status_code_list"] == "200"
    assert raw["message"] == "GET https://www.example.com:443/ HTTP/1.1"


def test_redirect_and_lambda_error_fields() -> None:
    assert parse_alb(AWS_EXAMPLES["h2"])["redirect_url"] == "https://example.com:80/"
    failed = parse_alb(AWS_EXAMPLES["lambda_failed"])
    assert failed["error_reason"] == "LambdaInvalidResponse"
    assert "target_status_code" not in failed and "target_ip" not in failed


@pytest.mark.parametrize("count", [13, 17, 22, 25, 27, 29, 30, 33])
def test_older_shorter_entries_parse(count: int) -> None:
    tokens = _tokens(AWS_EXAMPLES["https"])
    line = " ".join(tokens[:count])
    raw = parse_alb(line)
    assert "parse_error" not in raw, raw
    assert raw["http"]["status"] == 200
    assert ("trace_id" in raw) == (count >= 18)
    assert ("conn_trace_id" in raw) == (count >= 30)
    normalized(raw)


def _tokens(line: str) -> list[str]:
    import re

    return re.findall(r'"(?:[^"\\]|\\.)*"|\S+', line)


def test_the_29_field_examples_of_the_2021_documentation() -> None:
    """The examples as the user guide printed them before conn_trace_id (unquoted target list)."""
    line = ('http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 '
            '192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 '
            '"GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - '
            'arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 '
            '"Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2018-07-02T22:22:48.364000Z '
            '"forward" "-" "-" 10.0.0.1:80 200 "-" "-"')
    raw = parse_alb(line)
    assert raw["target_port_list"] == "10.0.0.1:80" and raw["target_status_code_list"] == "200"
    assert raw["matched_rule_priority"] == 0
    assert normalized(raw)["trace_id"] == "5833726236d228ad5d99923122bbe354"


def test_extra_trailing_fields_are_kept() -> None:
    line = AWS_EXAMPLES["http"] + ' 10.0.0.9 "new value" -'
    raw = parse_alb(line)
    assert raw["extra_fields"] == ["10.0.0.9", "new value", "-"]
    assert raw["http"]["status"] == 200


def test_ipv6_client_and_minus_one_times() -> None:
    line = format_alb_line({
        "type": "https", "time": "2026-11-01T12:00:00.000001Z", "elb": "app/lb/1",
        "client:port": "2001:db8:85a3::8a2e:370:7334:54321", "request_processing_time": -1,
        "target_processing_time": -1, "response_processing_time": -1, "elb_status_code": 503,
        "received_bytes": 0, "sent_bytes": 162, "request": "GET https://[2001:db8::1]:443/x?y=1 HTTP/1.1",
        "user_agent": "Mozilla/5.0", "error_reason": "-",
    })
    raw = parse_alb(line)
    assert raw["http"]["client_ip"] == "2001:db8:85a3::8a2e:370:7334"
    assert raw["client_port"] == 54321
    assert "duration_ms" not in raw["http"]
    assert not any(k.endswith("_processing_ms") for k in raw)
    assert raw["http"]["path"] == "/x?y=1"
    assert raw["level"] == "ERROR"
    bracketed = parse_alb(line.replace("2001:db8:85a3::8a2e:370:7334:54321", "[2001:db8::7]:443"))
    assert bracketed["http"]["client_ip"] == "2001:db8::7" and bracketed["client_port"] == 443


def test_quotes_and_backslashes_inside_fields() -> None:
    line = format_alb_line({
        "type": "http", "time": "2026-11-01T12:00:00.000001Z", "elb": "app/lb/1",
        "client:port": "10.0.0.1:1", "target:port": "10.0.0.2:80", "request_processing_time": 0.001,
        "target_processing_time": 0.002, "response_processing_time": 0.0, "elb_status_code": 404,
        "target_status_code": 404, "received_bytes": 1, "sent_bytes": 2,
        "request": "GET http://h:80/a%20b HTTP/1.1", "user_agent": 'evil "agent" \\ with spaces',
    })
    assert '\\"agent\\"' in line
    raw = parse_alb(line)
    assert raw["http"]["user_agent"] == 'evil "agent" \\ with spaces'
    assert raw["level"] == "WARN" and raw["target_status_code"] == 404


def test_malformed_request_line_from_a_scanner() -> None:
    """ALB logs requests it could not parse with '-' method/protocol and -1 times."""
    line = ('http 2025-03-01T10:03:17.218099Z app/MyALB1/240dbdc5244653c9 205.210.31.158:61084 - -1 -1 -1 '
            '400 - 0 272 "- http://myalb1-878688131.us-east-1.elb.amazonaws.com:80- -" "-" - - - "-" "-" "-" '
            '- 2025-03-01T10:03:16.682000Z "-" "-" "-" "-" "-" "-" "-" TID_6cfb27fd2ef25c42932bd6e0ff56d631')
    raw = parse_alb(line)
    assert "parse_error" not in raw
    assert raw["http"]["status"] == 400 and "method" not in raw["http"]
    assert raw["url"] == "http://myalb1-878688131.us-east-1.elb.amazonaws.com:80-"
    normalized(raw)


@pytest.mark.parametrize("line,reason", [
    ("", "fields"),
    ("http 2018-07-02T22:23:00.186641Z app/lb/1 1.2.3.4:1 - 0.0 0.0 0.0 200", "fields"),
    (AWS_EXAMPLES["http"].replace("2018-07-02T22:23:00.186641Z", "yesterday", 1), "time"),
    (AWS_EXAMPLES["http"].replace(" 200 200 ", " OK 200 ", 1), "numeric"),
    (AWS_EXAMPLES["http"].replace('"curl/7.46.0"', '"curl/7.46.0', 1), "quote"),
    (AWS_EXAMPLES["http"].replace("0.000 0.001", "fast 0.001", 1), "numeric"),
])
def test_bad_lines_are_kept_with_a_reason(line: str, reason: str) -> None:
    raw = parse_alb(line)
    assert raw["message"] == line
    assert reason in raw["parse_error"]
    assert set(raw) == {"message", "parse_error"}
    assert normalized(raw)["message"] == line


def test_formatter_writes_every_field() -> None:
    values = {name: f"v{i}" for i, name in enumerate(ALB_FIELDS)}
    values.update({"time": 1_793_534_400_123_456_000, "request_processing_time": 0.5,
                   "target_processing_time": 0.25, "response_processing_time": 0.125,
                   "elb_status_code": 200, "target_status_code": 201, "received_bytes": 1,
                   "sent_bytes": 2, "request": "GET http://h:80/p HTTP/1.1", "client:port": "1.2.3.4:5",
                   "target:port": "5.6.7.8:9", "matched_rule_priority": 7})
    line = format_alb_line(values)
    assert len(_tokens(line)) == 33
    raw = parse_alb(line)
    assert raw["conn_trace_id"] == "v29" and raw["request_transform_status"] == "v32"
    assert raw["http"]["duration_ms"] == 875.0
    assert raw["timestamp"] == 1_793_534_400_123_456_000
    assert len(_tokens(format_alb_line(values, n_fields=25))) == 25


@pytest.mark.parametrize("times", ["0.000 1e306 0.000", "1e308 1e308 0.000"])
def test_seconds_whose_milliseconds_overflow_keep_the_line(times: str) -> None:
    """A processing time of 1e306 s is a finite float whose ms are inf (and two of 1e308 sum to
    inf): normalize rejects inf, so the line is kept with the reason, never a failing record."""
    line = AWS_EXAMPLES["http"].replace("0.000 0.001 0.000", times)
    raw = build_parser("alb").parse(line)
    assert raw["message"] == line
    assert "overflow" in raw["parse_error"] or "finite" in raw["parse_error"]
    normalize(raw, received_ns=0)


def test_a_time_before_1973_keeps_its_instant() -> None:
    """1e12 ns as an integer would be re-read by normalize as ms (2001)."""
    line = AWS_EXAMPLES["http"].replace("2018-07-02T22:23:00.186641Z", "1970-01-01T00:16:40Z")
    raw = build_parser("alb").parse(line)
    assert normalize(raw, received_ns=0)["timestamp"] == 10**12
