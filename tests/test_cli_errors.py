"""What the command line prints for untrusted text: provider errors and model output are shown literally
(rich markup in them neither crashes nor styles the terminal), API keys are redacted, exit codes as in --help."""

import pytest

from regenesis.cli import EXIT_CODES, build_parser, main
from tests.fake_server import FakeServer, Fault, fields_reply

FAKE_KEY = "sk-test0123456789abcdefghijklmnop"
HOSTILE = f"bad [/] request [bold]loud[/bold] for key {FAKE_KEY}"


def solve(server, capsys) -> tuple[int, str, str]:
    code = main(["solve", "What is 2 + 2?", "--program", "cot", "--model", "openai/m", "--api-base", server.url,
                 "--api-key", FAKE_KEY])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_provider_error_with_markup_and_a_key_is_printed_literally_and_redacted(capsys):
    with FakeServer(lambda body: Fault(status=400, message=HOSTILE)) as server:
        code, _, err = solve(server, capsys)
    assert code == 1
    line = next(line for line in err.splitlines() if line.startswith("failed:"))
    assert "bad [/] request [bold]loud[/bold] for key [redacted]" in line
    assert FAKE_KEY not in err


def test_model_text_with_markup_is_printed_literally(capsys):
    reply = {"reasoning": "Two [/] and two [bold]make[/bold] four.", "answer": "[red]4"}
    with FakeServer(lambda body: fields_reply(body, reply)) as server:
        code, out, _ = solve(server, capsys)
    assert code == 0
    assert "Two [/] and two [bold]make[/bold] four." in out and "Answer: [red]4" in out


def test_an_unknown_provider_is_bad_input_in_one_line(capsys):
    assert main(["solve", "What is 2 + 2?", "--model", "nosuchprovider/xyz"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("error: nosuchprovider/xyz: unknown provider 'nosuchprovider' (not a LiteLLM provider; see "
                           "https://docs.litellm.ai/docs/providers), and not a local file or folder")


@pytest.mark.parametrize("command", ["models", "tasks", "solve", "synthesize", "finetune", "export-gguf", "eval",
                                     "experiment"])
def test_every_command_lists_the_exit_codes(command, capsys):
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args([command, "--help"])
    assert done.value.code == 0
    assert " ".join(capsys.readouterr().out.split()).endswith(EXIT_CODES)
