# The Snakemake glue every rule module shares: the project's interpreter first on PATH, the config
# merged and validated, and PIPELINE, the jobs and files of this config (orthojac.workflow).
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError


# The rules run `python -m orthojac …` (and the notebooks `jupyter-nbconvert`) from PATH. A local job's
# shell gets this process's os.environ; a SLURM job is submitted with `sbatch --export=ALL` (and
# PATH, declared below, is exported in its command) and runs `<this interpreter> -m snakemake`, which
# loads this file again. So the folder of the interpreter running Snakemake, which must import
# orthojac anyway, goes first on PATH: `.venv/bin/snakemake` typed in a shell where .venv is not
# active runs every job with the project's python.
envvars:
    "PATH",


_FIX = "create the project's environment with `make .venv/.installed`, then run `.venv/bin/snakemake …` (or `source .venv/bin/activate` first)"
try:
    import orthojac
except ImportError as error:
    raise WorkflowError(
        f"{sys.executable} (running Snakemake) cannot import orthojac ({error}): {_FIX}"
    )
_BIN = Path(sys.executable).parent
if not (_BIN / "python").exists():
    raise WorkflowError(
        f"the rules run `python`, and {_BIN} has none beside {sys.executable}: {_FIX}"
    )
_PATH = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d]
if _PATH[:1] != [str(_BIN)]:
    os.environ["PATH"] = os.pathsep.join([str(_BIN), *_PATH])

from orthojac.workflow import (
    IDX_FILES,
    PAPER_FIGURES,
    PAPER_TABLES,
    SECTIONS,
    STAND_IN_DIR,
    Pipeline,
    config_errors,
    config_file_errors,
    fill_defaults,
    replace_sections_whole,
    whole_schema,
)
from snakemake.common.configfile import load_configfile

# The schema's file: what is not a setting; orthojac.workflow.schema adds the settings blocks,
# generated from the settings dataclasses (`orthojac schema` prints the whole).
SCHEMA = Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"

# The config: config.yaml, each `--configfile` replacing the sections it names whole, `--config`
# last (orthojac.workflow.replace_sections_whole); every schema violation named, with what the
# schema cannot say (a key repeated in a file, non-finite numbers, names, bounds: all at once);
# then the schema's defaults filled in (orthojac.workflow.fill_defaults, as snakemake.utils.validate
# would fill them).
_file_errors = config_file_errors(
    dict.fromkeys([*workflow.configfiles, *workflow.overwrite_configfiles])
)
replace_sections_whole(
    config,
    [load_configfile(str(p)) for p in workflow.overwrite_configfiles],
    workflow.config_settings.config,
)
_errors = _file_errors + config_errors(config, SCHEMA)
if _errors:
    raise ValueError(
        f"the config does not match {SCHEMA.name}:\n  " + "\n  ".join(_errors)
    )
fill_defaults(config, whole_schema(SCHEMA))

# Every job, flag and file of this configuration (orthojac.workflow, imported and tested).
PIPELINE = Pipeline(config)
REPORT_PAGES = PIPELINE.pages()
