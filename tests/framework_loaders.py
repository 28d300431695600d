"""Read an ``indomer export`` back with the frameworks' own dataset loading code.

Run as ``python tests/framework_loaders.py ms-swift|llamafactory FOLDER [NAME]`` with
``PYTHONPATH`` on the folder where tools/install.sh put ms-swift 4.6.0 and LLaMA-Factory
0.9.5 (``.cache/framework-loaders``, installed with ``--no-deps``: their pins would replace
datasets 5, pandas and pillow in .venv). It prints one JSON object: the rows as the framework
hands them to its template, with media paths resolved as the framework resolves them. No
model weights and no tokenizer are loaded; that part of the frameworks needs a model hub.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile


def llamafactory(folder: str, name: str) -> dict:
    """LLaMA-Factory's own loader: dataset_info.json -> DatasetAttr -> datasets' JSON builder
    -> SharegptDatasetConverter; then the qwen2_omni template's plugin checks the
    <video>/<audio> placeholders against the media lists (``_validate_messages``)."""
    from llamafactory.data.loader import _load_single_dataset
    from llamafactory.data.parser import get_dataset_list
    from llamafactory.data.template import TEMPLATES
    from llamafactory.hparams import DataArguments, ModelArguments
    from transformers import Seq2SeqTrainingArguments

    data_args = DataArguments(dataset=name, dataset_dir=folder)
    model_args = ModelArguments(model_name_or_path="Qwen/Qwen2.5-Omni-7B")  # never loaded
    training_args = Seq2SeqTrainingArguments(output_dir=tempfile.mkdtemp())
    (attr,) = get_dataset_list([name], folder)
    ds = _load_single_dataset(attr, model_args, data_args, training_args)
    plugin = TEMPLATES["qwen2_omni"].mm_plugin
    rows = []
    for ex in ds:
        videos, audios = ex["_videos"] or [], ex["_audios"] or []
        plugin._validate_messages(ex["_prompt"] + ex["_response"], [], videos, audios)
        rows.append(
            {
                "system": ex["_system"],
                "prompt": ex["_prompt"],
                "response": ex["_response"],
                "videos": videos,
                "audios": audios,
            }
        )
    return {"media_dir": data_args.media_dir, "rows": rows}


def ms_swift(records: str) -> dict:
    """ms-swift's own ``load_dataset`` (AutoPreprocessor -> MessagesPreprocessor, its row
    checks and media casts), then its media path resolution (``_check_path``) run from the
    export folder, as the README's training command is."""
    from swift.dataset import load_dataset
    from swift.template.vision_utils import _check_path

    train, _ = load_dataset([records], split_dataset_ratio=0.0, num_proc=1)
    os.chdir(os.path.dirname(os.path.abspath(records)))
    rows = []
    for row in train:
        media = (row.get("videos") or []) + (row.get("audios") or [])
        rows.append(
            {
                "messages": row["messages"],
                "videos": row.get("videos"),
                "audios": row.get("audios"),
                "resolved": [_check_path(m) for m in media],
            }
        )
    return {"columns": sorted(train.column_names), "rows": rows}


if __name__ == "__main__":
    fmt, target = sys.argv[1], sys.argv[2]
    result = ms_swift(target) if fmt == "ms-swift" else llamafactory(target, sys.argv[3])
    sys.stdout.write("\n" + json.dumps(result) + "\n")
