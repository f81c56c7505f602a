rule spectrum:
    input:
        weights="results/runs/{experiment}/{run}/{checkpoint}.pt",
        data=dataset_files,
    output:
        body="results/spectra/{experiment}/{run}/{checkpoint}.body.csv",
        layers="results/spectra/{experiment}/{run}/{checkpoint}.layers.csv",
    log:
        "results/logs/spectrum/{experiment}/{run}/{checkpoint}.log",
    benchmark:
        "results/benchmarks/spectrum/{experiment}/{run}/{checkpoint}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        args=spectra_args,
        dataset=run_dataset,
    shell:
        "python -m orthojac.spectra --weights {input.weights} --data-dir results/data/{params.dataset}"
        " {params.args} --threads {threads} --out-body {output.body} --out-layers {output.layers}"
        " 2> {log}"
