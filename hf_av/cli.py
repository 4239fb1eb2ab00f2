"""`hf-av`: convert original checkpoints, run the pipelines on files, train, benchmark, write model cards, draw pictures.

    hf-av list      [--json]   (families, their classes, converters and training tasks)
    hf-av convert   --model cav-mae --checkpoint FILE.pth --output-dir DIR
    hf-av predict   DIR clip.mp4 [--top-k 5] [--json]
    hf-av embed     DIR a.mp4 b.wav ... --output embeddings.npy|.safetensors
    hf-av retrieve  DIR query.mp4 CLIPS_DIR_OR_FILES... [--query-modality audio] [--top-k 10]
    hf-av train     ...   (hf_av.training)
    hf-av benchmark ...   (benchmarks/run.py)
    hf-av card      DIR [--source FILE.pth]
    hf-av push      DIR user/repo
    hf-av visualize {localization,reconstruction,timeline} ...

User errors (missing or corrupt files, wrong arguments) print ONE line and exit with status 1 (argparse usage errors:
2); `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .families import FAMILIES, families_with_converter, get_family, resolve

__all__ = ["CliError", "build_parser", "main"]

MEDIA_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv", ".wav", ".flac", ".mp3", ".m4a", ".ogg", ".aac")


PASSTHROUGH_COMMANDS = ("train", "benchmark")


class CliError(Exception):
    """A user error with a one-line message."""


# ---------------------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------------------
def _existing_file(path: str, what: str = "file") -> str:
    if not os.path.exists(path):
        raise CliError(f"{path}: no such {what}")
    if not os.path.isfile(path):
        raise CliError(f"{path}: not a {what}")
    return path


def _model_dir(path: str) -> str:
    if not os.path.isdir(path) and not os.path.exists(path):
        raise CliError(f"{path}: no such model folder")
    if os.path.isdir(path) and not os.path.isfile(os.path.join(path, "config.json")):
        raise CliError(f"{path}: not a model folder (no config.json)")
    return path


def _read_config(model_dir: str) -> dict:
    try:
        return json.loads(Path(model_dir, "config.json").read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CliError(f"{model_dir}/config.json: {error}") from error


def _task_for(model_dir: str) -> str:
    architectures = _read_config(model_dir).get("architectures") or []
    if any(a.endswith("ForAudioVisualEventLocalization") for a in architectures):
        return "audio-visual-event-localization"
    if any(a.endswith("Classification") for a in architectures):
        return "audio-visual-classification"
    raise CliError(
        f"{model_dir}: {', '.join(architectures) or 'this model'} has no classification or event head; "
        "use `hf-av embed` or `hf-av retrieve` with an encoder"
    )


def _pipeline(task: str, model_dir: str, device: str | None):
    import hf_av  # noqa: F401  (registers the pipelines)
    from transformers import pipeline

    return pipeline(task, model=model_dir, device=device)


def _frames(value: str):
    if value in ("all", "middle"):
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'all', 'middle' or a frame number, got {value!r}") from None


def _media_files(items: list[str]) -> list[str]:
    files = []
    for item in items:
        if os.path.isdir(item):
            found = sorted(str(p) for p in Path(item).iterdir() if p.suffix.lower() in MEDIA_SUFFIXES and p.is_file())
            if not found:
                raise CliError(f"{item}: no media files ({', '.join(MEDIA_SUFFIXES)}) in this folder")
            files.extend(found)
        else:
            files.append(_existing_file(item, "media file"))
    return files


def _print_json(data) -> None:
    print(json.dumps(data, indent=2, default=float))


def _progress(iterable, total: int, desc: str, quiet: bool):
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="clip", disable=quiet or total < 2, file=sys.stderr)


# ---------------------------------------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------------------------------------
def cmd_convert(args) -> int:
    converter = get_family(args.model).converter  # argparse only offers families whose row has a converter
    if args.original_model is not None and args.original_model not in converter.original_kinds:
        raise CliError(
            f"--original-model {args.original_model!r} is not a {args.model} checkpoint kind; "
            f"choose one of {', '.join(converter.original_kinds)}"
        )
    convert = converter.load()
    if not os.path.isfile(args.checkpoint + ".index"):  # a TF2 checkpoint is a prefix (PATH/ckpt-N), not a file
        _existing_file(args.checkpoint, "checkpoint")
    if args.original_config:
        _existing_file(args.original_config, "config file")
    output = convert(args.checkpoint, args.output_dir, args.original_config, args.original_model)
    if args.remote_code:
        import hf_av  # noqa: F401
        from .hub.remote_code import export_remote_code

        export_remote_code(output)
    print(f"wrote {output}")
    return 0


def cmd_predict(args) -> int:
    _model_dir(args.model)
    files = _media_files(args.inputs)
    task = _task_for(args.model)
    pipe = _pipeline(task, args.model, args.device)
    results = []
    for path in _progress(files, len(files), "predicting", args.quiet):
        if task == "audio-visual-classification":
            output = pipe(path, top_k=args.top_k, frames=args.frames, modality=args.modality)
        else:
            output = pipe(path, modality=args.modality)
        results.append({"file": path, "task": task, "predictions" if task.endswith("classification") else "events": output})
    if args.json:
        _print_json(results if len(results) > 1 else results[0])
        return 0
    for result in results:
        print(result["file"])
        if task == "audio-visual-classification":
            for item in result["predictions"]:
                print(f"  {item['score']:.4f}  {item['label']}")
        else:
            for event in result["events"]["events"]:
                print(f"  {event['start']:6.2f}-{event['end']:6.2f}s  {event['label']}  ({event['score']:.3f})")
    return 0


def _save_array(path: str, arrays: dict) -> None:
    import numpy as np

    suffix = Path(path).suffix.lower()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".npy":
        if len(arrays) != 1:
            raise CliError(f"{path}: .npy holds one array; use --modality audio or video, or a .safetensors / .npz output")
        np.save(path, next(iter(arrays.values())))
    elif suffix == ".npz":
        np.savez(path, **arrays)
    elif suffix == ".safetensors":
        from safetensors.numpy import save_file

        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, path)
    else:
        raise CliError(f"{path}: output must end in .npy, .npz or .safetensors")


def cmd_embed(args) -> int:
    import numpy as np

    _model_dir(args.model)
    files = _media_files(args.inputs)
    suffix = Path(args.output).suffix.lower()
    if suffix not in (".npy", ".npz", ".safetensors"):
        raise CliError(f"{args.output}: output must end in .npy, .npz or .safetensors")
    pipe = _pipeline("audio-visual-feature-extraction", args.model, args.device)
    collected: dict[str, list] = {}
    for path in _progress(files, len(files), "embedding", args.quiet):
        for key, value in pipe(path, modality=args.modality, frames=args.frames).items():
            collected.setdefault(key, []).append(value)
    if any(len(v) != len(files) for v in collected.values()):
        raise CliError("some inputs lack a modality the others have; pass --modality audio or --modality video")
    arrays = {key: np.stack(values).astype(np.float32) for key, values in collected.items()}
    _save_array(args.output, arrays)
    Path(args.output).with_suffix(".files.txt").write_text("\n".join(files) + "\n")
    shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in arrays.items())
    print(f"wrote {args.output} ({shapes}); row order in {Path(args.output).with_suffix('.files.txt')}")
    return 0


def _modality(value: str) -> str:
    """One modality vocabulary ("audio", "visual"); "video" is still accepted for older command lines."""
    if value == "video":
        print('hf-av: modality "video" is deprecated, use "visual"', file=sys.stderr)
        return "visual"
    return value


def cmd_retrieve(args) -> int:
    _model_dir(args.model)
    query = _existing_file(args.query, "media file")
    candidates = _media_files(args.candidates)
    pipe = _pipeline("audio-visual-retrieval", args.model, args.device)
    candidate_modality = "audio" if args.query_modality == "visual" else "visual"
    bank = pipe.embed_candidates(candidates, candidate_modality, batch_size=args.batch_size, progress=not args.quiet)
    ranking = pipe(query, candidate_embeddings=bank, candidate_names=candidates, query_modality=args.query_modality,
                   top_k=args.top_k)
    if args.json:
        _print_json({"query": query, "query_modality": args.query_modality, "ranking": ranking})
        return 0
    print(f"{query} ({args.query_modality} -> {candidate_modality})")
    for rank, item in enumerate(ranking, 1):
        print(f"  {rank:3d}. {item['score']:+.4f}  {item['candidate']}")
    return 0


def cmd_train(args) -> int:
    try:
        from .training import cli_main
    except ImportError as error:
        raise CliError(f"training is not available in this installation ({error})") from error
    result = cli_main(list(args.rest))
    return int(result) if isinstance(result, int) else 0


def _find_benchmark_runner() -> Path | None:
    candidates = [Path.cwd() / "benchmarks" / "run.py", Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"]
    return next((p for p in candidates if p.is_file()), None)


def cmd_benchmark(args) -> int:
    import runpy

    runner = _find_benchmark_runner()
    if runner is None:
        raise CliError("benchmarks/run.py not found; run from a source checkout of hf_av that has the benchmarks")
    saved = sys.argv
    sys.argv = [str(runner), *args.rest]
    try:
        runpy.run_path(str(runner), run_name="__main__")
    except SystemExit as exit_:
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 1
    finally:
        sys.argv = saved
    return 0


def cmd_card(args) -> int:
    _model_dir(args.model)
    import hf_av  # noqa: F401  (registers the configs)
    from transformers import AutoConfig

    from .hub.model_card import build_family_model_card, write_model_card

    config_dict = _read_config(args.model)
    model_type = config_dict.get("model_type")
    if model_type not in FAMILIES:
        raise CliError(f"{args.model}: no model card template for model_type {model_type!r}")
    family = get_family(model_type)
    config = AutoConfig.from_pretrained(args.model)
    source = args.source or Path(args.model).name
    lookup = family.converter.find_released_checkpoint if family.converter is not None else None
    checkpoint = resolve(lookup, f"{model_type} released-checkpoint lookup")(source) if lookup else None
    architecture = (config_dict.get("architectures") or [""])[0]
    path = write_model_card(args.model, build_family_model_card(config, source, checkpoint, architecture))
    print(f"wrote {path}")
    return 0


def family_summary(family) -> dict:
    """What `hf-av list` shows of a family row (names only: nothing is imported)."""
    def name(path):
        return path.rsplit(".", 1)[-1] if path else None

    converter = family.converter
    return {
        "model_type": family.model_type,
        "name": family.name,
        "config": name(family.config),
        "models": {auto: name(path) for auto, path in family.models.items()},
        "preprocessing": {
            kind: name(getattr(family, kind))
            for kind in ("feature_extractor", "image_processor", "video_processor", "tokenizer", "processor")
            if getattr(family, kind)
        },
        "converter": None if converter is None else {
            "original_kinds": list(converter.original_kinds), "checkpoint": converter.checkpoint_format,
            "script": converter.script,
        },
        "tasks": dict(family.tasks),
        "paper": family.card.paper,
        "license": family.card.license,
    }


def cmd_list(args) -> int:
    summaries = [family_summary(family) for family in FAMILIES.values()]
    if args.json:
        _print_json(summaries)
        return 0
    for info in summaries:
        print(f"{info['name']} (model_type {info['model_type']}; {info['paper']}; licence {info['license']})")
        rows = [("config", info["config"]), *info["models"].items(), *info["preprocessing"].items()]
        converter = info["converter"]
        rows.append(("convert", "no converter" if converter is None else (
            f"hf-av convert --model {info['model_type']} ({converter['checkpoint']}; "
            f"--original-model {'|'.join(converter['original_kinds'])})"
        )))
        rows.append(("train tasks", ", ".join(f"{t} -> {head}" for t, head in info["tasks"].items()) or "none"))
        width = max(len(key) for key, _ in rows) + 2
        for key, value in rows:
            print(f"  {key + ':':<{width}}{value}")
    return 0


def cmd_push(args) -> int:
    _model_dir(args.model)
    import hf_av  # noqa: F401

    from .hub.remote_code import push_to_hub

    info = push_to_hub(args.model, args.repo_id, private=args.private or None)
    print(f"uploaded {args.model} to {getattr(info, 'commit_url', args.repo_id)}")
    return 0


def cmd_visualize(args) -> int:
    from . import visualization

    visualization.require_matplotlib()
    if args.kind == "timeline":
        tracks = visualization.load_timeline_tracks(_existing_file(args.segments, "JSON file"))
        path = visualization.plot_event_timeline(tracks, args.output, segment_duration=args.segment_duration,
                                                 title=args.title)
        print(f"wrote {path}")
        return 0
    _model_dir(args.model)
    _existing_file(args.video, "media file")
    if args.kind == "localization":
        path = visualization.sound_source_localization_figure(args.model, args.video, args.output, frames=args.frames,
                                                               device=args.device)
    else:
        path = visualization.mae_reconstruction_figure(args.model, args.video, args.output, seed=args.seed,
                                                        audio_mask_ratio=args.mask_ratio, visual_mask_ratio=args.mask_ratio,
                                                        device=args.device)
    print(f"wrote {path}")
    return 0


# ---------------------------------------------------------------------------------------------------------------------
# parser
# ---------------------------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-av",
        description="Audio-visual transformers (CAV-MAE, VATT, LAVisH, DG-SCT) in the Hugging Face ecosystem.",
        epilog="Run `hf-av COMMAND --help` for the options of a command.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.add_argument("-v", "--verbose", action="store_true", help="show Transformers' loading messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add_device(p):
        p.add_argument("--device", default=None, help="torch device, e.g. cpu, cuda, cuda:1 (default: first GPU or CPU)")

    p = sub.add_parser("list", help="model families: classes, converters, training tasks",
                       description="The family registry (hf_av.families), one entry per family.")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_list)

    converters = families_with_converter()
    kinds = sorted({kind for family in converters.values() for kind in family.converter.original_kinds})
    formats = "; ".join(f"{t}: {f.converter.checkpoint_format}" for t, f in sorted(converters.items()))
    p = sub.add_parser("convert", help="convert an original checkpoint into a Transformers folder",
                       description="Convert an original checkpoint (weights, config, processor and model card).")
    p.add_argument("--model", required=True, choices=sorted(converters), help="model family of the checkpoint")
    p.add_argument("--checkpoint", required=True, help=f"original checkpoint ({formats})")
    p.add_argument("--output-dir", required=True, help="folder to write")
    p.add_argument("--original-config", default=None, help="JSON with the original constructor arguments")
    p.add_argument("--original-model", default=None, metavar="KIND",
                   help=f"original model kind, checked against the weights ({', '.join(kinds)}; "
                        "per family: hf-av list)")
    p.add_argument("--remote-code", action="store_true",
                   help="also write self-contained modeling code + auto_map (loads with trust_remote_code=True)")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("predict", help="classify clips (or localise events) with a fine-tuned model",
                       description="Top-k labels per clip (classification heads) or per-second events (AVE heads).")
    p.add_argument("model", help="model folder")
    p.add_argument("inputs", nargs="+", help="media files or folders of them")
    p.add_argument("--top-k", type=int, default=5, help="labels per clip (default 5)")
    p.add_argument("--frames", type=_frames, default="all",
                   help="'all' (average the per-frame predictions as the paper evaluates; default), 'middle', or N")
    p.add_argument("--modality", type=_modality, choices=("audio-visual", "audio", "visual"), default=None,
                   help="use only this modality (default: all the file has)")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_device(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("embed", help="joint-space embeddings of clips to .npy / .npz / .safetensors",
                       description="One row per input file (order written to OUTPUT.files.txt).")
    p.add_argument("model", help="model folder")
    p.add_argument("inputs", nargs="+", help="media files or folders of them")
    p.add_argument("--output", "-o", required=True, help="output .npy (one modality), .npz or .safetensors")
    p.add_argument("--modality", type=_modality, choices=("audio-visual", "audio", "visual"), default=None,
                   help="embeddings to compute (default: all the files have)")
    p.add_argument("--frames", type=_frames, default="middle", help="frames for visual embeddings (default middle)")
    add_device(p)
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("retrieve", help="rank clips for a query clip (audio->visual or visual->audio)",
                       description="Rank candidate clips by cosine similarity of joint-space embeddings.")
    p.add_argument("model", help="model folder")
    p.add_argument("query", help="query media file")
    p.add_argument("candidates", nargs="+", help="candidate media files or folders of them")
    p.add_argument("--query-modality", type=_modality, choices=("audio", "visual"), default="audio",
                   help="embed the query's audio (default; candidates by their frames) or its frames")
    p.add_argument("--top-k", type=int, default=None, help="length of the ranking (default: all)")
    p.add_argument("--batch-size", type=int, default=8, help="candidates embedded per forward pass")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_device(p)
    p.set_defaults(func=cmd_retrieve)

    p = sub.add_parser("train", help="fine-tune / pre-train (arguments of hf_av.training)", add_help=False,
                       description="Delegates every argument to hf_av.training.cli_main.")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("benchmark", help="speed/memory benchmarks (benchmarks/run.py)", add_help=False,
                       description="Delegates every argument to benchmarks/run.py.")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_benchmark)

    p = sub.add_parser("card", help="write or refresh the model card (README.md) of a model folder")
    p.add_argument("model", help="model folder")
    p.add_argument("--source", default=None, help="original checkpoint file name (provenance, released results)")
    p.set_defaults(func=cmd_card)

    p = sub.add_parser("push", help="upload a model folder (with remote code) to the Hugging Face Hub")
    p.add_argument("model", help="model folder")
    p.add_argument("repo_id", help="Hub repository, e.g. user/cav-mae-audioset")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.set_defaults(func=cmd_push)

    p = sub.add_parser("visualize", help="pictures: sound-source maps, MAE reconstructions, event timelines",
                       description="Write a PNG.")
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    k = kinds.add_parser("localization", help="CAV-MAE sound-source localisation heat maps over frames")
    k.add_argument("model", help="CAV-MAE model folder (any head)")
    k.add_argument("video", help="media file with audio and video")
    k.add_argument("--output", "-o", required=True, help="PNG to write")
    k.add_argument("--frames", type=_frames, default="all", help="frames to show ('all' = the ten evaluation frames)")
    add_device(k)
    k = kinds.add_parser("reconstruction", help="MAE reconstruction of a masked spectrogram and frame")
    k.add_argument("model", help="CAV-MAE pre-training folder (CavMaeForPreTraining)")
    k.add_argument("video", help="media file with audio and video")
    k.add_argument("--output", "-o", required=True, help="PNG to write")
    k.add_argument("--mask-ratio", type=float, default=0.75, help="fraction of patches removed (default 0.75)")
    k.add_argument("--seed", type=int, default=0, help="seed of the random mask")
    add_device(k)
    k = kinds.add_parser("timeline", help="event localization timeline from per-second labels")
    k.add_argument("segments", help="JSON: {track: [label per second]} or the output of `hf-av predict --json`")
    k.add_argument("--output", "-o", required=True, help="PNG to write")
    k.add_argument("--segment-duration", type=float, default=1.0, help="seconds per label (default 1)")
    k.add_argument("--title", default=None, help="figure title")
    p.set_defaults(func=cmd_visualize)
    return parser


def _one_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    if isinstance(error, KeyError) and text.startswith("'"):
        text = text.strip("'")
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # `train` / `benchmark` hand every later argument (options included) to their runner untouched
    global_flags = {"--debug", "-q", "--quiet", "-v", "--verbose"}
    position = next((i for i, token in enumerate(argv) if token not in global_flags), None)
    if position is not None and argv[position] in PASSTHROUGH_COMMANDS:
        args = parser.parse_args(argv[: position + 1])
        args.rest = argv[position + 1 :]
    else:
        args = parser.parse_args(argv)
    if not args.verbose:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
        except ImportError:  # pragma: no cover - transformers is a dependency
            pass
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("hf-av: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - one line for the user, the traceback with --debug
        if args.debug:
            raise
        print(f"hf-av {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
