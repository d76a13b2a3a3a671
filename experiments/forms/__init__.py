"""The wizard's step forms (one per step of experiments.wizard.STEPS)."""

from .model_steps import CVStep, ModelsStep, ReviewStep, RunnerStep
from .steps import DatasetStep, PreprocessingStep, TargetStep

STEP_FORMS = {"dataset": DatasetStep, "target": TargetStep, "preprocessing": PreprocessingStep,
              "models": ModelsStep, "cv": CVStep, "runner": RunnerStep, "review": ReviewStep}

__all__ = ["STEP_FORMS"]
