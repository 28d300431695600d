"""What is asked about a clip: the versioned prompt of ``schemas/prompts.yaml`` and the
chat-completions body that carries the clip's media and transcript (see :mod:`indomer.predict`
for the content parts sent)."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indomer.labels import label_set
from indomer.predict.settings import Settings

#: The prompt file shared with ``indomer export`` (a checkpoint fine-tuned on the exported
#: records is asked exactly what it was trained on).
PROMPTS_FILE = "prompts.yaml"
TRANSCRIPT = "{transcript}"
#: Greedy decoding, and room for a short sentence ("The speaker sounds happy.").
TEMPERATURE = 0.0
MAX_TOKENS = 64


_AUDIO_FORMATS = {".wav": "wav", ".mp3": "mp3", ".flac": "flac"}
_VIDEO_TYPES = {
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".mov": "video/quicktime",
    ".mkv": "video/x-matroska",
}

# --------------------------------------------------------------------------- the prompt


@dataclass(frozen=True)
class Prompt:
    """What every request of a run says around the clip: the system turn and the user text
    (``{transcript}`` where the clip's transcript goes), from ``schemas/prompts.yaml``."""

    version: int
    system: str
    user: str

    @property
    def sha256(self) -> str:
        """Hex sha256 of the prompt as sent (system and user text, canonical JSON): the same
        hash means the same words were asked."""
        doc = json.dumps({"system": self.system, "user": self.user}, sort_keys=True)
        return hashlib.sha256(doc.encode("utf-8")).hexdigest()

    def render(self, transcript: str | None) -> str:
        return self.user.replace(TRANSCRIPT, transcript or "")


def load_prompts() -> dict:
    """``schemas/prompts.yaml`` (the one versioned prompt file)."""
    from importlib import resources

    import yaml

    return yaml.safe_load(resources.files("indomer.schemas").joinpath(PROMPTS_FILE).read_bytes())


def prompt_for(task: str, modalities: tuple[str, ...], doc: dict | None = None) -> Prompt:
    """The prompt of ``task``: the instruction naming the labels as ``english (indonesian)``,
    then the transcript line when text is sent, as ``indomer export`` writes its user turns
    (after the media, which here are content parts instead of ``<video>`` tags)."""
    doc = load_prompts() if doc is None else doc
    entry = doc["tasks"][task]
    ls = label_set(task)
    labels = ", ".join(f"{n} ({entry['names_id'][n]})" for n in ls.names)
    instruction = " ".join(entry["instruction"].split()).replace("{labels}", labels)
    user = instruction
    if "text" in modalities:
        user += "\n" + doc["transcript"].replace("{transcript}", TRANSCRIPT)
    return Prompt(version=int(doc["version"]), system=" ".join(doc["system"].split()), user=user)


@dataclass(frozen=True)
class Clip:
    """What is sent about one clip: its transcript and the media bytes asked for."""

    id: str
    text: str | None
    audio: dict | None = None
    video: dict | None = None


def _has_bytes(media: Any) -> bool:
    return isinstance(media, dict) and bool(media.get("bytes"))


def lacking(clip: Clip, modalities: tuple[str, ...]) -> list[str]:
    """The modalities asked for that this clip does not carry (release builds have no media)."""
    out = []
    if "text" in modalities and not (clip.text or "").strip():
        out.append("text")
    if "audio" in modalities and "video" not in modalities and not _has_bytes(clip.audio):
        out.append("audio")
    if "video" in modalities and not _has_bytes(clip.video):
        out.append("video")
    return out


# --------------------------------------------------------------------------- requests


def _data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def build_request(clip: Clip, s: Settings, prompt: Prompt) -> dict:
    """The JSON body of the chat-completions request for one clip."""
    parts: list[dict] = []
    extra: dict = {}
    if "video" in s.modalities:
        video = clip.video or {}
        suffix = Path(str(video.get("path") or "clip.mp4")).suffix.lower()
        url = _data_url(_VIDEO_TYPES.get(suffix, "video/mp4"), video["bytes"])
        parts.append({"type": "video_url", "video_url": {"url": url}})
        if "audio" in s.modalities:
            extra["mm_processor_kwargs"] = {"use_audio_in_video": True}
    elif "audio" in s.modalities:
        audio = clip.audio or {}
        suffix = Path(str(audio.get("path") or "clip.wav")).suffix.lower()
        data = base64.b64encode(audio["bytes"]).decode("ascii")
        parts.append(
            {
                "type": "input_audio",
                "input_audio": {"data": data, "format": _AUDIO_FORMATS.get(suffix, "wav")},
            }
        )
    parts.append({"type": "text", "text": prompt.render(clip.text)})
    body = {
        "model": s.model,
        "messages": [
            {"role": "system", "content": prompt.system},
            {"role": "user", "content": parts},
        ],
        "temperature": TEMPERATURE,
        "max_tokens": MAX_TOKENS,
    }
    body.update(extra)
    return body


def shown_request(body: dict, s: Settings, key_set: bool) -> str:
    """The request as ``--dry-run`` prints it: media abbreviated, the key never shown."""

    def short(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: short(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [short(v) for v in value]
        if isinstance(value, str) and value.startswith("data:") and ";base64," in value:
            head, sep, data = value.partition(";base64,")
            return f"{head}{sep}<{len(base64.b64decode(data))} bytes, not shown>"
        if isinstance(value, str) and key == "data":  # input_audio
            return f"<base64 of {len(base64.b64decode(value))} bytes, not shown>"
        return value

    auth = f"Bearer <${s.api_key_env}, not shown>" if key_set else "Bearer EMPTY"
    lines = [
        f"POST {s.url}",
        f"Authorization: {auth}",
        "Content-Type: application/json",
        "",
        json.dumps(short(body), indent=2, sort_keys=True, ensure_ascii=False),
    ]
    return "\n".join(lines) + "\n"
