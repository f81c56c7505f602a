rule fetch_data:
    output:
        expand("results/data/{{dataset}}/{name}", name=IDX_FILES),
    log:
        "results/logs/fetch_data/{dataset}.log",
    conda:
        "../../envs/data.yaml"
    params:
        args=lambda w: PIPELINE.fetch_args(w.dataset),
        out_dir=lambda w: PIPELINE.data_dir(w.dataset),
    shell:
        "python -m orthojac fetch --out-dir {params.out_dir:q} {params.args} 2> {log:q}"
