"""Training and evaluation entry points shared by every family (Trainer / Accelerate on hf_av streams)."""

from .evaluation import compute_embeddings, evaluate_retrieval
from .run import AudioVisualJobArguments, AudioVisualTrainer, build_trainer, cli_main, read_manifests, run_training
from .tasks import TASKS, TaskSpec, get_task, model_class_for, processor_for_config

__all__ = [
    "AudioVisualJobArguments",
    "AudioVisualTrainer",
    "TASKS",
    "TaskSpec",
    "build_trainer",
    "cli_main",
    "compute_embeddings",
    "evaluate_retrieval",
    "get_task",
    "model_class_for",
    "processor_for_config",
    "read_manifests",
    "run_training",
]
