"""${ENV} interpolation: substitution, escapes, errors that name the variable
but never show any value, and secrets kept out of reprs."""

from __future__ import annotations

import pytest

from jobs import JobError, Secret, is_secret, iter_requests, load_job_text
from jobs.interp import interpolate

SECRET = "s3cr3t-Value"
ENV = {"TOKEN": SECRET, "HOST": "api.example.com", "EMPTY": ""}


def problems(text: str, env: dict[str, str] = ENV) -> list[str]:
    with pytest.raises(JobError) as info:
        load_job_text(text, filename="j.yaml", env=env)
    rendered = str(info.value)
    for value in env.values():
        if value:
            assert value not in rendered
    return rendered.splitlines()


def test_plain_text_is_returned_as_is() -> None:
    assert interpolate("no variables", ENV) == ("no variables", [])
    assert not is_secret(interpolate("cost: $5", ENV)[0])


def test_variables_are_substituted_and_marked_secret() -> None:
    value, errors = interpolate("Bearer ${TOKEN}", ENV)
    assert errors == []
    assert value == f"Bearer {SECRET}"
    assert isinstance(value, Secret)
    assert repr(value) == "Secret('***')"
    assert str(value) == f"Bearer {SECRET}"
    assert f"{value}" == f"Bearer {SECRET}"


def test_double_dollar_escapes() -> None:
    value, errors = interpolate("$${TOKEN} and ${HOST}", ENV)
    assert (value, errors) == ("${TOKEN} and api.example.com", [])
    literal, _ = interpolate("$${TOKEN}", ENV)
    assert literal == "${TOKEN}"
    assert not is_secret(literal)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${MISSING}", "environment variable MISSING is not set"),
        ("${EMPTY}", "environment variable EMPTY is empty"),
        ("${TOKEN", "unterminated '${' (write '$${' for a literal '${')"),
        ("${1X}", "invalid variable reference '${1X}': use ${NAME} with letters, digits and '_'"),
        (
            "${A:-default}",
            "invalid variable reference '${A:-default}': use ${NAME} with letters, digits and '_'",
        ),
    ],
)
def test_interpolation_errors(text: str, message: str) -> None:
    assert interpolate(text, ENV)[1] == [message]


def test_missing_variable_in_a_job_names_it_and_shows_no_values() -> None:
    text = (
        "version: 1\n"
        "session:\n"
        "  headers: {Authorization: 'Bearer ${TOKEN}', X-Other: '${NOPE} ${ALSO_NOPE}'}\n"
        "requests: [https://example.com/]\n"
    )
    assert problems(text) == [
        "j.yaml:3:56: session.headers.X-Other: environment variable NOPE is not set",
        "j.yaml:3:56: session.headers.X-Other: environment variable ALSO_NOPE is not set",
    ]


def test_interpolated_values_reach_the_model_as_secrets() -> None:
    job = load_job_text(
        "version: 1\n"
        "session: {auth: {user: bot, password: '${TOKEN}'}}\n"
        "requests:\n"
        "  - {url: 'https://${HOST}/v1', params: {key: '${TOKEN}'}, json: {t: '${TOKEN}'}}\n",
        env=ENV,
    )
    assert job.session.auth is not None
    assert job.session.auth.password == SECRET
    assert is_secret(job.session.auth.password)
    spec = next(iter_requests(job))
    assert spec.url == "https://api.example.com/v1"
    assert is_secret(spec.url)
    assert spec.options.params == (("key", SECRET),)
    assert SECRET in job.secrets
    for shown in (repr(job), repr(spec), str(job.requests)):
        assert SECRET not in shown
    assert job.redact(f"GET https://api.example.com/v1?key={SECRET}") == "GET ***?key=***"


def test_secret_header_with_crlf_is_refused_without_echoing_it() -> None:
    env = {"TOKEN": "abc\r\nX-Injected: 1"}
    text = (
        "version: 1\nsession: {headers: {Authorization: 'Bearer ${TOKEN}'}}\n"
        "requests: [https://example.com/]\n"
    )
    assert problems(text, env) == [
        "j.yaml:2:36: session.headers.Authorization: header value contains a control character "
        "('\\r')"
    ]


def test_secret_url_errors_do_not_echo_the_url() -> None:
    env = {"BASE": "ftp://user:pw@files.example.com"}
    lines = problems("version: 1\nrequests: ['${BASE}/x']\n", env)
    assert lines == ["j.yaml:2:12: requests[0]: URL must start with http:// or https://"]


def test_secret_in_a_hidden_placeholder_is_not_named() -> None:
    env = {"PATH_PART": "{sekrit}"}
    lines = problems(
        "version: 1\nrequests: [{url: 'https://x.com/${PATH_PART}/{a}', range: {a: [1, 2]}}]\n",
        env,
    )
    assert lines == ["j.yaml:2:18: requests[0].url: a placeholder is not defined in 'range'"]


def test_keys_and_numbers_are_never_interpolated() -> None:
    lines = problems(
        "version: 1\nlimits: {concurrency: '${N}'}\nrequests: [https://example.com/]\n",
        {"N": "7777"},
    )
    assert lines == [
        "j.yaml:2:23: limits.concurrency: must be an integer from 1 to 10000, not a quoted "
        "string '${N}' (remove the quotes)"
    ]


def test_public_env_values_are_not_secrets() -> None:
    """Variables listed in ``public_env`` are substituted but never masked."""
    job = load_job_text(
        "version: 1\npublic_env: [BASE]\n"
        "requests:\n  - ${BASE}/a\n  - ${BASE}/b?key=${TOKEN}\n",
        env={"BASE": "http://127.0.0.1:8080", "TOKEN": "s3cret"},
    )
    urls = [spec.url for spec in iter_requests(job)]
    assert urls == ["http://127.0.0.1:8080/a", "http://127.0.0.1:8080/b?key=s3cret"]
    assert job.redact(urls[0]) == "http://127.0.0.1:8080/a"
    assert "s3cret" not in job.redact(urls[1])  # a string holding a secret stays masked
    assert "http://127.0.0.1:8080" not in job.secrets


def test_public_env_must_list_names() -> None:
    with pytest.raises(JobError) as caught:
        load_job_text("version: 1\npublic_env: [not a name]\nrequests: [http://h/]\n")
    assert "public_env[0]" in str(caught.value)
    with pytest.raises(JobError) as caught:
        load_job_text("version: 1\npublic_env: BASE\nrequests: [http://h/]\n")
    assert "public_env: must be a list" in str(caught.value)
