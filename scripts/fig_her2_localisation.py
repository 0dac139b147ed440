"""Rule fig2_her2_localisation: IF fields with outlines and HER2 by condition.

With ``params.orthogonal`` (one z-stack field of the images sheet: ``file``,
``her2_channel``, ``nuclear_channel``, ``pixel_size_um``, optional
``z_step_um``, ``axes``, ``cell_line``, ``condition``, ``image_id`` and the
section ``row``, ``x0``, ``x1``) fig 2 adds an orthogonal (XZ) view of a
representative cell; without it (no z-stack field) there is no such panel.
"""

from sepher.figures.imaging_plots import orthogonal_section, plot_her2_localisation
from sepher.figures.inputs import localisation_fields
from sepher.figures.style import house_style, save_figure
from sepher.imaging.io import read_stack
from sepher.io.tables import read_table
from sepher.workflow import run_logged, snakemake_or_cli


def orthogonal_data(spec):
    """Panel f's data from one z-stack field's sheet row, or None without one."""
    if not spec:
        return None
    stack, pixel_size_um, z_step_um = read_stack(
        spec["file"],
        spec.get("pixel_size_um"),
        spec.get("z_step_um"),
        axes=spec.get("axes"),
    )
    label = " ".join(str(spec[k]) for k in ("cell_line", "condition") if spec.get(k))
    print(f"orthogonal view: {spec['file']} ({stack.shape[1]} planes, {z_step_um} um step)")
    return orthogonal_section(
        stack,
        pixel_size_um,
        z_step_um,
        her2_channel=int(spec["her2_channel"]),
        nuclear_channel=int(spec["nuclear_channel"]),
        row=spec.get("row"),
        x0=spec.get("x0"),
        x1=spec.get("x1"),
        label=label,
        basal_first=bool(spec.get("basal_first", True)),
    )


def main(smk):
    p = smk.params
    summary = read_table(smk.input.summary)
    per_image = summary[summary["level"] == "image"]
    lines = list(dict.fromkeys(line for line, _ in p.groups))
    fields = localisation_fields(
        per_image, p.fields, line=p.line or lines[0], conditions=p.conditions
    )
    with house_style(smk.input.style):
        fig = plot_her2_localisation(
            fields,
            read_table(smk.input.cells),
            read_table(smk.input.replicates),
            summary[summary["level"] == "condition"],
            read_table(smk.input.comparisons),
            conditions=list(p.conditions),
            lines=lines,
            conf_level=p.conf_level,
            simulated=p.simulated,
            orthogonal=orthogonal_data(p.get("orthogonal")),
        )
        save_figure(fig, smk.output.pdf, smk.output.png)


run_logged(snakemake_or_cli(globals()), main)
