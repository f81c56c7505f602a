# orthojac: replication of "Neural Networks with Orthogonal Jacobian" (Massucco, Murari,
# Schönlieb 2025) and Hlav (2019). Data → training → Jacobian spectra → tables, figures → report.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


wildcard_constraints:
    experiment="[A-Za-z0-9_]+",
    run="[^/]+",
    checkpoint="init|final|epoch[1-9][0-9]*",
    dataset="[A-Za-z0-9_]+",


include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/spectra.smk"
include: "workflow/rules/thesis.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/report.smk"


# Everything up to the report; with `--config reference_part=NAME` (make reference PART=NAME) only
# that part's training, spectra and thesis tables (orthojac.workflow.Pipeline.targets).
rule all:
    default_target: True
    input:
        PIPELINE.targets(),
