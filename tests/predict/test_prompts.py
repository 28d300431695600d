"""``indomer.predict.prompts``: the prompt built from a prompts document (labels as
``english (indonesian)``, the transcript line only when text is sent), its hash, the
chat-completions body for each modality, and ``--dry-run``'s abbreviated copy."""

from __future__ import annotations

import base64
import json

from indomer.predict.prompts import (
    MAX_TOKENS,
    TEMPERATURE,
    Clip,
    Prompt,
    build_request,
    lacking,
    load_prompts,
    prompt_for,
    shown_request,
)
from indomer.predict.settings import settings

DOC = {
    "version": 3,
    "system": "  Be   brief. ",
    "transcript": "T: {transcript}",
    "tasks": {
        "sentiment": {
            "names_id": {"negative": "neg", "neutral": "net", "positive": "pos"},
            "instruction": "Pick\n one of {labels}.",
        }
    },
}


def run(modalities: str):
    return settings(endpoint="http://h/v1", model="m", task="sentiment", modalities=modalities)


def test_the_prompt_names_the_labels_and_the_transcript_slot():
    p = prompt_for("sentiment", ("text",), DOC)
    assert p == Prompt(
        version=3,
        system="Be brief.",
        user="Pick one of negative (neg), neutral (net), positive (pos).\nT: {transcript}",
    )
    assert p.render("halo") == "Pick one of negative (neg), neutral (net), positive (pos).\nT: halo"
    assert p.render(None).endswith("\nT: ")
    assert prompt_for("sentiment", ("audio",), DOC).user == (
        "Pick one of negative (neg), neutral (net), positive (pos)."
    )


def test_the_hash_changes_with_the_words_only():
    p = prompt_for("sentiment", ("text",), DOC)
    same = Prompt(version=9, system=p.system, user=p.user)
    assert p.sha256 == same.sha256 and len(p.sha256) == 64
    assert p.sha256 != Prompt(version=3, system=p.system, user=p.user + " ").sha256


def test_the_shipped_prompts_cover_both_tasks():
    doc = load_prompts()
    for task in ("emotion", "sentiment"):
        p = prompt_for(task, ("text", "audio"), doc)
        assert p.version == doc["version"] and "{transcript}" in p.user
    assert "happiness (kebahagiaan)" in prompt_for("emotion", ("text",), doc).user


def test_lacking_names_the_modalities_a_clip_cannot_send():
    bare = Clip(id="a", text=" ")
    assert lacking(bare, ("text", "audio", "video")) == ["text", "video"]  # audio rides in video
    assert lacking(bare, ("audio",)) == ["audio"]
    full = Clip(id="a", text="x", audio={"bytes": b"1"}, video={"bytes": b"2"})
    assert lacking(full, ("text", "audio", "video")) == []


def test_requests_carry_the_media_then_the_text():
    prompt = prompt_for("sentiment", ("text",), DOC)
    clip = Clip(id="a", text="halo", audio={"bytes": b"RIFF", "path": "a.FLAC"},
                video={"bytes": b"MOV", "path": "a.mov"})  # fmt: skip
    text = build_request(clip, run("text"), prompt)
    assert text == {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": prompt.render("halo")}]},
        ],
        "temperature": TEMPERATURE,
        "max_tokens": MAX_TOKENS,
    }
    audio = build_request(clip, run("audio,text"), prompt)["messages"][1]["content"]
    assert audio[0] == {
        "type": "input_audio",
        "input_audio": {"data": base64.b64encode(b"RIFF").decode(), "format": "flac"},
    }
    both = build_request(clip, run("video,audio"), prompt)
    assert both["messages"][1]["content"][0] == {
        "type": "video_url",
        "video_url": {"url": "data:video/quicktime;base64," + base64.b64encode(b"MOV").decode()},
    }
    assert both["mm_processor_kwargs"] == {"use_audio_in_video": True}
    assert "mm_processor_kwargs" not in build_request(clip, run("video"), prompt)


def test_the_dry_run_copy_hides_media_and_key():
    prompt = prompt_for("sentiment", ("text",), DOC)
    clip = Clip(id="a", text="halo", audio={"bytes": b"12345"}, video={"bytes": b"123"})
    s = run("video,audio,text")
    shown = shown_request(build_request(clip, s, prompt), s, key_set=True)
    head, _, body = shown.partition("\n\n")
    assert head == (
        "POST http://h/v1/chat/completions\nAuthorization: Bearer <$OPENAI_API_KEY, not shown>"
        "\nContent-Type: application/json"
    )
    url = json.loads(body)["messages"][1]["content"][0]["video_url"]["url"]
    assert url == "data:video/mp4;base64,<3 bytes, not shown>"
    audio = build_request(clip, run("audio"), prompt)
    shown = shown_request(audio, run("audio"), key_set=False)
    assert "Authorization: Bearer EMPTY" in shown and "<base64 of 5 bytes, not shown>" in shown
