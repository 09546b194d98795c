"""Tiny server-side SVG line charts for the dashboard (no JavaScript library, no CDN)."""

from django.utils.html import format_html, format_html_join

WIDTH, HEIGHT, PAD = 480, 200, 36


def line_chart(
    points: list[tuple[float, float]], *, x_label: str, y_label: str, y_max: float | None = None
) -> str:
    """An SVG polyline of `points` (x, y), with axes labeled; empty text when no points."""
    if not points:
        return ""
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x_lo, x_hi = min(xs), max(xs)
    y_hi = max(y_max or 0, max(ys)) or 1.0
    span = (x_hi - x_lo) or 1.0

    def sx(x: float) -> float:
        return PAD + (x - x_lo) / span * (WIDTH - 2 * PAD)

    def sy(y: float) -> float:
        return HEIGHT - PAD - y / y_hi * (HEIGHT - 2 * PAD)

    path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
    dots = format_html_join(
        "",
        '<circle cx="{}" cy="{}" r="3"><title>{}: {}, {}: {}</title></circle>',
        ((f"{sx(x):.1f}", f"{sy(y):.1f}", x_label, x, y_label, round(y, 3)) for x, y in points),
    )
    return format_html(
        '<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{yl} by {xl}">'
        '<line x1="{p}" y1="{b}" x2="{r}" y2="{b}" class="axis"/>'
        '<line x1="{p}" y1="{p}" x2="{p}" y2="{b}" class="axis"/>'
        '<text x="{r}" y="{h2}" text-anchor="end">{xl} ({x0} to {x1})</text>'
        '<text x="4" y="14">{yl} (max {ymax})</text>'
        '<polyline points="{path}" class="line"/>{dots}</svg>',
        w=WIDTH,
        h=HEIGHT,
        p=PAD,
        b=HEIGHT - PAD,
        r=WIDTH - PAD,
        h2=HEIGHT - 8,
        xl=x_label,
        yl=y_label,
        x0=x_lo,
        x1=x_hi,
        ymax=round(y_hi, 3),
        path=path,
        dots=dots,
    )
