"""Shared by the DG-SCT task examples: a tiny DG-SCT backbone (3-stage Swin-V2 at 32 px, 3-stage HTS-AT over 8 mel
bins at 8 kHz) and the run through the shared training entry point (`hf_av.training.run_training`, the code behind
`hf-av train`)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from transformers import TrainingArguments

TINY_BACKBONE = {
    "vision_config": {"image_size": 32, "patch_size": 4, "embed_dim": 8, "depths": [2, 2, 2], "num_heads": [1, 2, 2],
                      "window_size": 2, "drop_path_rate": 0.0},
    "audio_config": {"spec_size": 32, "num_mel_bins": 8, "patch_size": 4, "patch_stride": [4, 4],
                     "patch_embeds_hidden_size": 8, "depths": [1, 1, 2], "num_attention_heads": [1, 2, 2],
                     "window_size": 2, "hidden_size": 32, "sampling_rate": 8000, "n_fft": 256, "hop_length": 80,
                     "f_max": 4000.0, "drop_path_rate": 0.0},
    "num_segments": 3,
    "num_latent_tokens": 2,
    "adapter_reduction_factor": 2,
    "temporal_audio_dim": 8,
    "temporal_visual_dim": 16,
    "temporal_hidden_size": 8,
    "temporal_intermediate_size": 16,
    "temporal_num_attention_heads": 2,
    "class_activation_top_k": 2,
}


def parse_arguments(description: str, default_out: str, learning_rate: float = 1e-3, extra=()) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", default=default_out, help="folder for the tiny dataset and the trained model")
    parser.add_argument("--model", default=None,
                        help="a saved or converted model folder to fine-tune (default: a tiny model from scratch)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=learning_rate)
    for flag, help_text in extra:
        parser.add_argument(flag, action="store_true", help=help_text)
    return parser.parse_args()


def train(task: str, model_type: str, head_settings: dict, files: dict, args, **job_fields) -> dict:
    """Fine-tune through the entry point, evaluate, save; prints the equivalent `hf-av train` command."""
    import torch

    from hf_av.training import AudioVisualJobArguments, run_training

    # toy-sized tensors: more intra-op threads only spin against each other (and against a busy machine)
    torch.set_num_threads(1)
    out = Path(args.out)
    overrides = None if args.model else json.dumps({**TINY_BACKBONE, **head_settings})
    job = AudioVisualJobArguments(
        task=task, train_manifest=str(files["train"]), eval_manifest=str(files["eval"]), model_type=model_type,
        model_name_or_path=args.model, config_overrides=overrides, eval_batch_size=4, **job_fields,
    )
    training_args = TrainingArguments(
        output_dir=str(out / "model"), max_steps=args.steps, per_device_train_batch_size=2,
        learning_rate=args.learning_rate, logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, seed=0,
        disable_tqdm=True, dataloader_num_workers=0,
    )
    command = (f"hf-av train --task {task} --train_manifest {files['train']} --eval_manifest {files['eval']} "
               + (f"--model_name_or_path {args.model} " if args.model else f"--model_type {model_type} "
                  f"--config_overrides '{overrides}' ")
               + "".join(f"--{key} {value} " for key, value in job_fields.items())
               + f"--output_dir {out / 'model'} --max_steps {args.steps} --per_device_train_batch_size 2 "
               f"--learning_rate {args.learning_rate} --logging_steps 1 --save_strategy no --use_cpu")
    print(f"same run from the command line:\n  {command}\n")
    start = time.perf_counter()
    results = run_training(job, training_args)
    losses = [round(entry["loss"], 4) for entry in results["train_loss_history"]]
    print(json.dumps({"train_loss": losses, "metrics": results["metrics"],
                      "decode_errors": results["decode_errors"]["num_failed"],
                      "seconds": round(time.perf_counter() - start, 1), "saved": str(out / "model")}, indent=2))
    return results
