//! A picture per figure of `make bench`, as SVG beside the JSON reports: latency percentile
//! curves of certflow and its baseline (logarithmic in both the tail and the latency, so a
//! 50 µs publish and a 50 ms tail read on one chart), and bars for rates.

use std::path::Path;

use hdrhistogram::Histogram;
use svg::Document;
use svg::node::element::path::Data;
use svg::node::element::{Line, Path as SvgPath, Rectangle as Rect, Text};

const WIDTH: f64 = 860.0;
const HEIGHT: f64 = 420.0;
/// Left of the plot: room for the latency axis's labels.
const LEFT: f64 = 80.0;
/// Left of the bars: room for their names.
const BAR_LEFT: f64 = 170.0;
/// Right of the plot: room for the legend.
const RIGHT: f64 = 250.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;
/// One colour per series, in order: certflow first, its baseline second.
const COLOURS: &[&str] = &["#d1495b", "#00798c", "#edae49", "#30638e"];
/// The percentiles marked on the x axis.
const MARKS: &[(f64, &str)] = &[
    (0.0, "0"),
    (0.5, "50"),
    (0.9, "90"),
    (0.99, "99"),
    (0.999, "99.9"),
    (0.9999, "99.99"),
];

/// One latency curve: a label and every call's latency in nanoseconds.
pub struct Curve<'a> {
    pub label: &'a str,
    pub latencies: &'a Histogram<u64>,
}

/// One bar: a label and its value in the chart's unit.
pub struct Bar<'a> {
    pub label: &'a str,
    pub value: f64,
}

/// Where a percentile sits on the x axis: the number of nines it has, so each decade of
/// the tail (90, 99, 99.9…) gets the same width.
fn nines(quantile: f64) -> f64 {
    -(1.0 - quantile.min(0.99999)).log10()
}

/// Latency percentiles of each curve, milliseconds on a logarithmic axis.
pub fn percentiles(title: &str, curves: &[Curve<'_>]) -> Document {
    let max_x = nines(0.9999);
    let quantiles: Vec<f64> = (0..=400)
        .map(|step| 1.0 - 10f64.powf(-max_x * f64::from(step) / 400.0))
        .collect();
    let in_ms = |nanos: u64| (nanos as f64 / 1e6).max(1e-3);
    let (low, high) = curves
        .iter()
        .filter(|curve| !curve.latencies.is_empty())
        .flat_map(|curve| {
            [
                in_ms(curve.latencies.min()),
                in_ms(curve.latencies.value_at_quantile(0.9999)),
            ]
        })
        .fold((f64::MAX, f64::MIN), |(low, high), ms| {
            (low.min(ms), high.max(ms))
        });
    let (low, high) = if low > high {
        (0.01, 1.0)
    } else {
        (
            10f64.powf(low.log10().floor()),
            10f64.powf(high.log10().ceil().max(low.log10().floor() + 1.0)),
        )
    };
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |n: f64| LEFT + plot_w * n / max_x;
    let y = |ms: f64| TOP + plot_h * (1.0 - (ms.log10() - low.log10()) / (high / low).log10());

    let mut document = frame(title, "percentile", "latency (ms)", LEFT);
    for &(quantile, label) in MARKS {
        let at = x(nines(quantile));
        document = document
            .add(grid_line(at, TOP, at, TOP + plot_h))
            .add(label_at(at, TOP + plot_h + 18.0, "middle", label));
    }
    let mut decade = low;
    while decade <= high * 1.0001 {
        let at = y(decade);
        document = document
            .add(grid_line(LEFT, at, LEFT + plot_w, at))
            .add(label_at(LEFT - 8.0, at + 4.0, "end", &format_ms(decade)));
        decade *= 10.0;
    }
    for (index, curve) in curves.iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        if !curve.latencies.is_empty() {
            let mut data = Data::new();
            for (step, &quantile) in quantiles.iter().enumerate() {
                let point = (
                    x(nines(quantile)),
                    y(in_ms(curve.latencies.value_at_quantile(quantile))),
                );
                data = if step == 0 {
                    data.move_to(point)
                } else {
                    data.line_to(point)
                };
            }
            document = document.add(
                SvgPath::new()
                    .set("fill", "none")
                    .set("stroke", colour)
                    .set("stroke-width", 2)
                    .set("d", data),
            );
        }
        let p50 = in_ms(curve.latencies.value_at_quantile(0.5));
        let p99 = in_ms(curve.latencies.value_at_quantile(0.99));
        document = legend(
            document,
            index,
            colour,
            curve.label,
            &format!("p50 {}, p99 {}", format_ms(p50), format_ms(p99)),
        );
    }
    document
}

/// Horizontal bars of `bars`, each labelled with its value and `unit`.
pub fn bars(title: &str, unit: &str, bars: &[Bar<'_>]) -> Document {
    let plot_w = WIDTH - BAR_LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let high = bars.iter().map(|bar| bar.value).fold(0.0, f64::max);
    let high = if high > 0.0 { high * 1.1 } else { 1.0 };
    let slot = plot_h / bars.len().max(1) as f64;
    let mut document = frame(title, unit, "", BAR_LEFT);
    for (index, bar) in bars.iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        let top = TOP + slot * index as f64 + slot * 0.2;
        let width = plot_w * bar.value.max(0.0) / high;
        document = document
            .add(
                Rect::new()
                    .set("x", BAR_LEFT)
                    .set("y", top)
                    .set("width", width)
                    .set("height", slot * 0.6)
                    .set("fill", colour),
            )
            .add(label_at(
                BAR_LEFT + width + 6.0,
                top + slot * 0.3 + 4.0,
                "start",
                &format!("{} {unit}", format_value(bar.value)),
            ))
            .add(label_at(
                BAR_LEFT - 8.0,
                top + slot * 0.3 + 4.0,
                "end",
                bar.label,
            ));
    }
    document
}

/// Writes `document` to `path`.
pub fn write(path: &Path, document: &Document) -> std::io::Result<()> {
    svg::save(path, document)
}

/// A white page with the title and the axis names, the plot starting at `left`.
fn frame(title: &str, x_name: &str, y_name: &str, left: f64) -> Document {
    let plot_h = HEIGHT - TOP - BOTTOM;
    Document::new()
        .set("viewBox", (0, 0, WIDTH, HEIGHT))
        .set("width", WIDTH)
        .set("height", HEIGHT)
        .set("font-family", "sans-serif")
        .set("font-size", 12)
        .add(
            Rect::new()
                .set("width", WIDTH)
                .set("height", HEIGHT)
                .set("fill", "white"),
        )
        .add(
            Text::new(title)
                .set("x", left)
                .set("y", 28)
                .set("font-size", 16)
                .set("font-weight", "bold"),
        )
        .add(label_at(
            left + (WIDTH - left - RIGHT) / 2.0,
            HEIGHT - 18.0,
            "middle",
            x_name,
        ))
        .add(
            Text::new(y_name)
                .set("x", 0)
                .set("y", 0)
                .set("text-anchor", "middle")
                .set(
                    "transform",
                    format!("translate(18 {}) rotate(-90)", TOP + plot_h / 2.0),
                ),
        )
}

/// Series `index`'s colour, its name, and a second line under it.
fn legend(document: Document, index: usize, colour: &str, name: &str, more: &str) -> Document {
    let top = TOP + 36.0 * index as f64;
    let left = WIDTH - RIGHT + 16.0;
    document
        .add(
            Rect::new()
                .set("x", left)
                .set("y", top)
                .set("width", 12)
                .set("height", 12)
                .set("fill", colour),
        )
        .add(
            Text::new(name)
                .set("x", left + 18.0)
                .set("y", top + 10.0)
                .set("font-size", 11),
        )
        .add(
            Text::new(more)
                .set("x", left + 18.0)
                .set("y", top + 24.0)
                .set("font-size", 11),
        )
}

fn grid_line(x1: f64, y1: f64, x2: f64, y2: f64) -> Line {
    Line::new()
        .set("x1", x1)
        .set("y1", y1)
        .set("x2", x2)
        .set("y2", y2)
        .set("stroke", "#dddddd")
}

fn label_at(x: f64, y: f64, anchor: &str, text: &str) -> Text {
    Text::new(text)
        .set("x", x)
        .set("y", y)
        .set("text-anchor", anchor.to_string())
}

/// Milliseconds the way a reader says them: 0.05 ms, 2.1 ms, 120 ms.
fn format_ms(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 1.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.3} ms")
    }
}

fn format_value(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(values_ns: &[u64]) -> Histogram<u64> {
        let mut histogram = Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("bounds");
        for &value in values_ns {
            histogram.record(value).expect("in bounds");
        }
        histogram
    }

    #[test]
    fn a_percentile_chart_has_a_curve_and_a_legend_per_series() {
        let certflow = histogram(&(1..=1000).map(|n| n * 2_000).collect::<Vec<_>>());
        let raw = histogram(&(1..=1000).map(|n| n * 50).collect::<Vec<_>>());
        let svg = percentiles(
            "P2 revoke, one at a time",
            &[
                Curve {
                    label: "certflow",
                    latencies: &certflow,
                },
                Curve {
                    label: "raw publish",
                    latencies: &raw,
                },
            ],
        )
        .to_string();
        assert_eq!(svg.matches("<path").count(), 2, "{svg}");
        assert!(svg.contains("\np50 1.0 ms, p99 2.0 ms\n"), "{svg}");
        assert!(svg.contains("\np50 0.025 ms, p99 0.050 ms\n"), "{svg}");
        assert!(svg.contains("\n99.9\n"), "the tail is marked");
        // The y axis spans whole decades around both curves: 0.001 ms up to 10 ms.
        assert!(
            svg.contains("\n0.001 ms\n") && svg.contains("\n10.0 ms\n"),
            "{svg}"
        );
    }

    #[test]
    fn a_bar_chart_labels_every_bar_with_its_value() {
        let svg = bars(
            "P1",
            "calls/s",
            &[
                Bar {
                    label: "certflow",
                    value: 1_500.0,
                },
                Bar {
                    label: "raw publish",
                    value: 45_000.0,
                },
            ],
        )
        .to_string();
        assert!(
            svg.contains("\n1500 calls/s\n") && svg.contains("\n45000 calls/s\n"),
            "{svg}"
        );
        assert_eq!(svg.matches("<rect").count(), 3, "a background and two bars");
    }

    #[test]
    fn an_empty_series_draws_no_curve_and_does_not_fail() {
        let empty = histogram(&[]);
        let svg = percentiles(
            "nothing",
            &[Curve {
                label: "none",
                latencies: &empty,
            }],
        )
        .to_string();
        assert_eq!(svg.matches("<path").count(), 0);
    }
}
