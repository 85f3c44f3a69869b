"""The lab: interview claims tested by running them, each with numbers, a verdict and a figure."""

from tfdojo.lab.catalog import EXPERIMENTS, experiment, experiments_for
from tfdojo.lab.experiment import Experiment
from tfdojo.lab.result import Finding, LabResult

__all__ = ["EXPERIMENTS", "Experiment", "Finding", "LabResult", "experiment", "experiments_for"]
