//! Times making the three default sizes of real photos in-process, against
//! ImageMagick `convert IN -resize W OUT` ×3 (what the original app did) and
//! `vipsthumbnail IN -s W` ×3, in the same run on the same files. Prints
//! medians and ratios. Run through `scripts/bench-variants.sh`, which fetches
//! the photos and the reference tools.
//!
//! Usage: cargo bench --bench variants -- FILE... [--runs N]
//!        cargo bench --bench variants -- --rss FILE   (peak RSS of one render)

// A developer tool: a missing photo or tool should stop it loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kitteh::imaging::resize::{SizeSpec, render};
use kitteh::imaging::{Format, Limits, Stop, sniff};

const WIDTHS: [(&str, u32); 3] = [("tiny", 90), ("large", 300), ("monstrous", 600)];

fn sizes() -> Vec<SizeSpec> {
    WIDTHS
        .iter()
        .map(|(name, width)| SizeSpec {
            name: name.to_string(),
            width: *width,
        })
        .collect()
}

fn limits() -> Limits {
    Limits {
        max_width: 16_384,
        max_height: 16_384,
        max_pixels: 60_000_000,
        ..Limits::default()
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The real ImageMagick, not a wrapper in front of it.
fn convert_binary() -> Option<PathBuf> {
    ["/usr/bin/convert", "/usr/local/bin/convert"]
        .iter()
        .map(PathBuf::from)
        .find(|p| {
            Command::new(p)
                .arg("-version")
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("ImageMagick"))
        })
}

fn vips_binary() -> Option<PathBuf> {
    let p = PathBuf::from("/usr/bin/vipsthumbnail");
    Command::new(&p)
        .arg("--vips-version")
        .output()
        .ok()
        .map(|_| p)
}

fn run_three(make: impl Fn(u32, &Path) -> Command, out_dir: &Path, ext: &str) -> Duration {
    let start = Instant::now();
    for (name, width) in WIDTHS {
        let out = out_dir.join(format!("{name}.{ext}"));
        let status = make(width, &out).status().expect("reference tool runs");
        assert!(status.success(), "reference tool failed");
    }
    start.elapsed()
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if let Some(i) = args.iter().position(|a| a == "--rss") {
        let file = &args[i + 1];
        let bytes = std::fs::read(file).expect("read photo");
        let format = sniff(&bytes).expect("supported format");
        let before = peak_rss_kib();
        let out = render(&bytes, format, &sizes(), 82, &limits(), &Stop::never()).expect("render");
        println!(
            "peak RSS rendering {} ({} sizes): {:.1} MiB (process before render: {:.1} MiB)",
            file,
            out.len(),
            peak_rss_kib() as f64 / 1024.0,
            before as f64 / 1024.0
        );
        return;
    }
    let runs = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(7usize);
    let files: Vec<&String> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| !a.starts_with("--") && (*i == 0 || args[i - 1] != "--runs"))
        .map(|(_, a)| a)
        .collect();
    if files.is_empty() {
        println!("usage: cargo bench --bench variants -- FILE... [--runs N] | --rss FILE");
        println!("(scripts/bench-variants.sh fetches photos and reference tools)");
        return;
    }
    let convert = convert_binary();
    let vips = vips_binary();
    let tmp = tempfile::tempdir().expect("temp dir");
    println!(
        "{} runs each, interleaved; convert: {}, vipsthumbnail: {}",
        runs,
        convert
            .as_ref()
            .map_or("not installed".into(), |p| p.display().to_string()),
        vips.as_ref()
            .map_or("not installed".into(), |p| p.display().to_string()),
    );
    println!(
        "{:<34} {:>6} {:>11} {:>12} {:>12} {:>9} {:>9}",
        "file", "MP", "kitteh ms", "convert×3", "vips×3", "vs IM", "vs vips"
    );
    for file in files {
        let bytes = std::fs::read(file).expect("read photo");
        let format = sniff(&bytes).expect("supported format");
        let (w, h) = kitteh::imaging::dimensions(format, &bytes).expect("dimensions");
        let ext = match format {
            Format::Jpeg => "jpg",
            Format::Png => "png",
            Format::Gif => "gif",
            Format::WebP => "webp",
        };
        let (mut ours, mut im, mut vp) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let start = Instant::now();
            let out =
                render(&bytes, format, &sizes(), 82, &limits(), &Stop::never()).expect("render");
            ours.push(start.elapsed());
            assert_eq!(out.len(), 3);
            if let Some(convert) = &convert {
                im.push(run_three(
                    |width, out| {
                        let mut c = Command::new(convert);
                        c.arg(file).arg("-resize").arg(width.to_string()).arg(out);
                        c
                    },
                    tmp.path(),
                    ext,
                ));
            }
            if let Some(vips) = &vips {
                vp.push(run_three(
                    |width, out| {
                        let mut c = Command::new(vips);
                        c.arg(file)
                            .arg("-s")
                            .arg(width.to_string())
                            .arg("-o")
                            .arg(out);
                        c
                    },
                    tmp.path(),
                    ext,
                ));
            }
        }
        let ours = median(ours);
        let cell = |v: Vec<Duration>| {
            if v.is_empty() {
                ("-".to_string(), "-".to_string())
            } else {
                let m = median(v);
                (format!("{:.1}", ms(m)), format!("{:.1}×", ms(m) / ms(ours)))
            }
        };
        let (im_ms, im_ratio) = cell(im);
        let (vp_ms, vp_ratio) = cell(vp);
        let name = Path::new(file)
            .file_name()
            .map_or(file.clone(), |n| n.to_string_lossy().into_owned());
        println!(
            "{:<34} {:>6.1} {:>11.1} {:>12} {:>12} {:>9} {:>9}",
            name,
            f64::from(w) * f64::from(h) / 1e6,
            ms(ours),
            im_ms,
            vp_ms,
            im_ratio,
            vp_ratio
        );
    }
    println!("ratios: reference time / kitteh time (higher is better for kitteh)");
}
