//! `/experiments/{id}`: one experiment in full.

use std::fmt::Write as _;

use axum::extract::{Path, State};
use axum::response::Html;
use codeclab_lab::experiment::BdComparison;
use codeclab_lab::runner::{PointRecord, QualityMetric};
use serde::Serialize;

use super::{PageResult, count, esc, layout, number, script_json, text, time};
use crate::AppState;
use crate::data::{self, SHOWN_METRICS};
use crate::error::{Page, WebError};

/// A chart the page script draws with uPlot.
#[derive(Serialize)]
struct Chart {
    title: String,
    x_label: String,
    y_label: String,
    log_x: bool,
    series: Vec<Series>,
}

#[derive(Serialize)]
struct Series {
    label: String,
    /// (x, y) pairs.
    points: Vec<[f64; 2]>,
}

fn rd_series(label: String, points: &[PointRecord], metric: QualityMetric) -> Series {
    Series {
        label,
        points: points
            .iter()
            .filter_map(|p| Some([p.kbps, p.quality(metric)?]))
            .collect(),
    }
}

fn chart_block(chart: &Chart) -> String {
    format!(
        "<figure class=\"chart\"><script type=\"application/json\" data-chart>{}</script></figure>",
        script_json(chart)
    )
}

/// Per clip, the per-frame PSNR-Y and VMAF of every rate point, from the point's stored
/// per-frame scores; "not measured" where a point has none.
async fn per_frame_section(
    state: &AppState,
    id: i64,
    detail: &data::ExperimentDetail,
) -> Result<String, Page> {
    let mut body = String::from("<section><h2>Per-frame quality</h2>");
    let mut any = false;
    for (clip, points) in &detail.curves {
        let mut charts: Vec<(&str, Vec<Series>)> =
            vec![("psnr_y", Vec::new()), ("vmaf", Vec::new())];
        for (index, point) in points.iter().enumerate() {
            let dir = format!(
                "{}/{clip}/{index}",
                codeclab_lab::artifacts::experiment_prefix(id)
            );
            let Some(key) = codeclab_lab::artifacts::point_file_key(
                &detail.artifacts,
                &dir,
                codeclab_lab::runner::PER_FRAME_FILE,
            ) else {
                continue;
            };
            let bytes = state
                .lab
                .artifacts
                .get(key)
                .await
                .map_err(|e| Page(WebError::from(e)))?;
            let Ok(file) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                continue;
            };
            for (metric, series) in &mut charts {
                if let Some(values) = file["scores"][*metric].as_array() {
                    series.push(Series {
                        label: point.rate_point.to_string(),
                        points: values
                            .iter()
                            .enumerate()
                            .filter_map(|(frame, v)| Some([frame as f64, v.as_f64()?]))
                            .collect(),
                    });
                }
            }
        }
        for (metric, series) in charts {
            if series.is_empty() {
                continue;
            }
            any = true;
            body.push_str(&chart_block(&Chart {
                title: format!("{metric} per frame on {clip}"),
                x_label: "frame".into(),
                y_label: metric.into(),
                log_x: false,
                series,
            }));
        }
    }
    if any {
        body.push_str("<p data-field=\"per-frame\" data-value=\"measured\"></p>");
    } else {
        body.push_str(
            "<p class=\"nm\" data-field=\"per-frame\">not measured: no point of this experiment \
             stored its per-frame scores</p>",
        );
    }
    body.push_str("</section>");
    Ok(body)
}

/// The BD-rate of a comparison, mean and per clip, with hooks.
fn bd_cells(bd: &BdComparison, clips: &[String]) -> String {
    let prefix = format!("bd-rate:{}:{}", bd.anchor, bd.metric.key());
    let mut out = String::new();
    match &bd.report {
        Some(report) => {
            let _ = write!(
                out,
                "<td>{}</td>",
                number(
                    &format!("{prefix}:mean"),
                    report["mean"]["pchip"].as_f64(),
                    2
                )
            );
            for clip in clips {
                let entry = report["clips"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|c| c["clip"].as_str() == Some(clip));
                let value = entry.and_then(|c| c["report"]["pchip"].as_f64());
                let title = entry
                    .map(|c| {
                        if c["error"].is_null() {
                            format!(
                                "overlap {:.0} %",
                                c["report"]["overlap"].as_f64().unwrap_or(0.0) * 100.0
                            )
                        } else {
                            c["error"].to_string()
                        }
                    })
                    .unwrap_or_default();
                let _ = write!(
                    out,
                    "<td title=\"{}\">{}</td>",
                    esc(&title),
                    number(&format!("{prefix}:{clip}"), value, 2)
                );
            }
        }
        None => {
            let reason = bd.not_measured.as_deref().unwrap_or("");
            let _ = write!(
                out,
                "<td title=\"{}\">{}</td>",
                esc(reason),
                number(&format!("{prefix}:mean"), None, 2)
            );
            for clip in clips {
                let _ = write!(
                    out,
                    "<td>{}</td>",
                    number(&format!("{prefix}:{clip}"), None, 2)
                );
            }
        }
    }
    out
}

pub async fn page(State(state): State<AppState>, Path(id): Path<String>) -> PageResult {
    let id: i64 = id
        .parse()
        .map_err(|_| Page(WebError::NotFound(format!("there is no experiment `{id}`"))))?;
    let detail = data::experiment_detail(&state.lab, id).await?;
    let record = &detail.experiment;
    let mut body = String::new();

    let _ = write!(
        body,
        "<section class=\"cards\"><div class=\"card\"><table class=\"kv\">\
         <tr><th>experiment</th><td>{}</td></tr><tr><th>state</th><td>{}</td></tr>\
         <tr><th>reason</th><td>{}</td></tr><tr><th>codec</th><td>{}</td></tr>\
         <tr><th>proposer</th><td>{}</td></tr><tr><th>hypothesis</th><td>{}</td></tr>\
         <tr><th>parents</th><td>{}</td></tr><tr><th>rerun of</th><td>{}</td></tr>\
         <tr><th>created</th><td>{}</td></tr><tr><th>started</th><td>{}</td></tr><tr><th>finished</th><td>{}</td></tr>\
         <tr><th>planner cost $</th><td>{}</td></tr></table></div>",
        count("experiment:id", record.id),
        text("experiment:state", record.state.name()),
        text("experiment:reason", record.reason.as_deref().unwrap_or("")),
        text("experiment:codec", &record.spec.codec_label()),
        text("experiment:proposer", &record.spec.proposer),
        esc(&record.spec.hypothesis),
        record
            .spec
            .parents
            .iter()
            .map(|p| format!("<a href=\"/experiments/{p}\">{p}</a>"))
            .collect::<Vec<_>>()
            .join(", "),
        record
            .rerun_of
            .map(|r| format!("<a href=\"/experiments/{r}\">{r}</a>"))
            .unwrap_or_default(),
        time(record.created_at),
        record.started_at.map(time).unwrap_or_default(),
        record.finished_at.map(time).unwrap_or_default(),
        number("cost", detail.cost_usd, 4),
    );
    let jobs = &detail.jobs;
    let _ = write!(
        body,
        "<div class=\"card\"><h2>Jobs</h2><table class=\"kv\"><tr><th>done</th><td>{}</td></tr><tr><th>running</th><td>{}</td></tr>\
         <tr><th>queued</th><td>{}</td></tr><tr><th>failed</th><td>{}</td></tr><tr><th>cancelled</th><td>{}</td></tr></table>\
         <p class=\"admin\"><button id=\"rerun\" type=\"button\" data-action=\"/api/admin/experiments/{id}/rerun\">Rerun</button> \
         <button id=\"cancel\" type=\"button\" data-action=\"/api/admin/experiments/{id}/cancel\">Cancel</button> \
         <button id=\"promote\" type=\"button\" data-action=\"/api/admin/experiments/{id}/promote\">Promote to default</button></p></div></section>",
        count("jobs:done", jobs.done),
        count("jobs:running", jobs.running),
        count("jobs:queued", jobs.queued),
        count("jobs:failed", jobs.failed),
        count("jobs:cancelled", jobs.cancelled),
    );

    // BD-rates.
    let clips: Vec<String> = detail.curves.keys().cloned().collect();
    body.push_str("<section><h2>BD-rate (PCHIP, %; negative saves bits)</h2>");
    let analysis: Option<codeclab_lab::experiment::Analysis> = detail
        .analysis
        .clone()
        .and_then(|a| serde_json::from_value(a).ok());
    match &analysis {
        Some(analysis) if !analysis.bd_rates.is_empty() => {
            body.push_str("<table class=\"grid\"><thead><tr><th>anchor</th><th>metric</th><th>mean</th>");
            for clip in &clips {
                let _ = write!(body, "<th>{}</th>", esc(clip));
            }
            body.push_str("</tr></thead><tbody>");
            for bd in &analysis.bd_rates {
                let _ = write!(
                    body,
                    "<tr><td>{}</td><td>{}</td>{}</tr>",
                    esc(&bd.anchor),
                    bd.metric.key(),
                    bd_cells(bd, &clips)
                );
            }
            body.push_str("</tbody></table>");
        }
        Some(_) => body.push_str("<p class=\"nm\">no anchor comparison (an anchor curve itself, or no anchors named)</p>"),
        None => body.push_str("<p class=\"nm\" data-field=\"bd-rate\">not analysed yet</p>"),
    }
    body.push_str("</section>");

    // RD curves and table per clip.
    for (clip, points) in &detail.curves {
        let _ = write!(
            body,
            "<section><h2>RD on {}</h2><div class=\"charts\">",
            esc(clip)
        );
        let anchors = detail.anchor_curves.get(clip).cloned().unwrap_or_default();
        for metric in SHOWN_METRICS {
            let mut series = vec![rd_series(format!("experiment {id}"), points, metric)];
            for anchor in &anchors {
                series.push(rd_series(anchor.anchor.clone(), &anchor.points, metric));
            }
            if series.iter().all(|s| s.points.is_empty()) {
                let _ = write!(body, "<p class=\"nm\">{}: not measured</p>", metric.key());
                continue;
            }
            body.push_str(&chart_block(&Chart {
                title: format!("{} on {clip}", metric.key()),
                x_label: "kbps (log)".into(),
                y_label: metric.key().into(),
                log_x: true,
                series,
            }));
        }
        body.push_str("</div><table class=\"grid\"><thead><tr><th>rate</th><th>bytes</th><th>kbps</th><th>PSNR-Y</th><th>PSNR-YUV</th><th>SSIM</th><th>MS-SSIM</th><th>VMAF</th><th>enc s</th><th>dec s</th><th>dec instr/px</th><th>learned MAC/px</th></tr></thead><tbody>");
        for (index, p) in points.iter().enumerate() {
            let f = |key: &str| format!("rd:{clip}:{index}:{key}");
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&p.rate_point.to_string()),
                count(&f("bytes"), p.bytes as i64),
                number(&f("kbps"), Some(p.kbps), 3),
                number(&f("psnr_y"), p.quality(QualityMetric::PsnrY), 3),
                number(&f("psnr_yuv"), p.quality(QualityMetric::PsnrYuv), 3),
                number(&f("ssim"), p.quality(QualityMetric::Ssim), 4),
                number(&f("ms_ssim"), p.quality(QualityMetric::MsSsim), 4),
                number(&f("vmaf"), p.quality(QualityMetric::Vmaf), 3),
                number(&f("encode_s"), Some(p.encode.wall_seconds), 3),
                number(&f("decode_s"), Some(p.decode.wall_seconds), 3),
                number(&f("decoder_ipp"), p.decoder_instructions_per_pixel, 1),
                number(&f("learned_mac"), p.learned_mac_per_pixel, 1),
            );
        }
        body.push_str("</tbody></table></section>");
    }
    if detail.curves.is_empty() {
        body.push_str("<section><h2>RD</h2><p class=\"nm\">no point measured yet</p></section>");
    }

    body.push_str(&per_frame_section(&state, id, &detail).await?);

    // Frame viewer.
    if let Some((first_clip, first_points)) = detail.curves.iter().next() {
        let _ = write!(
            body,
            "<section id=\"frame-viewer\" data-experiment=\"{id}\"><h2>Frames</h2><p>\
             <label>clip <select id=\"frame-clip\">"
        );
        for (clip, points) in &detail.curves {
            let _ = write!(
                body,
                "<option value=\"{c}\" data-frames=\"{}\">{c}</option>",
                points.first().map_or(0, |p| p.frames),
                c = esc(clip)
            );
        }
        body.push_str("</select></label> <label>rate <select id=\"frame-rate\">");
        for (index, p) in first_points.iter().enumerate() {
            let _ = write!(
                body,
                "<option value=\"{index}\">{}</option>",
                esc(&p.rate_point.to_string())
            );
        }
        let frames = first_points.first().map_or(1, |p| p.frames.max(1));
        let _ = write!(
            body,
            "</select></label> <label>frame <input id=\"frame-index\" type=\"number\" min=\"0\" max=\"{}\" value=\"0\"></label> \
             <label>amplify <select id=\"frame-amplify\"><option>1</option><option>4</option><option selected>8</option><option>16</option><option>32</option></select></label> \
             <label>zoom <select id=\"frame-zoom\"><option>1</option><option selected>2</option><option>4</option><option>8</option></select></label> \
             <button id=\"frame-show\" type=\"button\">Show</button></p>\
             <div class=\"frames\" data-clip=\"{}\">\
             <figure><figcaption>source</figcaption><div class=\"zoom\"><img id=\"frame-source\" alt=\"source frame\"></div></figure>\
             <figure><figcaption>decoded</figcaption><div class=\"zoom\"><img id=\"frame-decoded\" alt=\"decoded frame\"></div></figure>\
             <figure><figcaption>|difference| × amplify (luma)</figcaption><div class=\"zoom\"><img id=\"frame-diff\" alt=\"difference\"></div></figure>\
             </div><p class=\"dim\">Decoded on request from the stored bitstream with the experiment's codec.</p></section>",
            frames - 1,
            esc(first_clip)
        );
    }

    // Genome and code.
    body.push_str("<section><h2>Genome and code</h2>");
    match detail.parent {
        Some(parent) => {
            let _ = write!(
                body,
                "<p>Compared with parent <a href=\"/experiments/{parent}\">experiment {parent}</a>.</p>"
            );
            if detail.genome_diff.is_empty() {
                body.push_str("<p class=\"dim\">Same genome as the parent.</p>");
            } else {
                body.push_str("<table class=\"grid\"><thead><tr><th>field</th><th>parent</th><th>this</th></tr></thead><tbody>");
                for change in &detail.genome_diff {
                    let show = |v: &Option<serde_json::Value>| {
                        v.as_ref().map_or("(absent)".into(), |v| v.to_string())
                    };
                    let _ = write!(
                        body,
                        "<tr data-field=\"genome:{}\"><td>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(&change.key),
                        esc(&change.key),
                        esc(&show(&change.parent)),
                        esc(&show(&change.child))
                    );
                }
                body.push_str("</tbody></table>");
            }
        }
        None => body.push_str("<p class=\"dim\">No parent.</p>"),
    }
    if let Some(genome) = &detail.genome {
        let _ = write!(
            body,
            "<details><summary>Full genome</summary><pre>{}</pre></details>",
            esc(&serde_json::to_string_pretty(genome).unwrap_or_default())
        );
    }
    if detail.new_edits.is_empty() {
        body.push_str("<p class=\"dim\">No source edit of its own.</p>");
    } else {
        for (index, edit) in detail.new_edits.iter().enumerate() {
            let _ = write!(
                body,
                "<div class=\"edit\"><h3>edit {index} in block {}</h3><pre class=\"del\">{}</pre><pre class=\"add\">{}</pre></div>",
                esc(edit["block"].as_str().unwrap_or("?")),
                esc(edit["search"].as_str().unwrap_or("")),
                esc(edit["replace"].as_str().unwrap_or("")),
            );
        }
    }
    body.push_str("</section>");

    // Planner.
    body.push_str("<section><h2>Planner</h2>");
    if detail.planner_turns.is_empty() {
        body.push_str("<p class=\"dim\">No planner turn produced this experiment.</p>");
    }
    for turn in &detail.planner_turns {
        let e = &turn.entry;
        let _ = write!(
            body,
            "<div class=\"turn\"><p>{} {} · {} · tokens in {} out {} · cost {}</p>\
             <details><summary>reasoning</summary><pre>{}</pre></details>\
             <details><summary>prompt</summary><pre>{}</pre></details>\
             <details><summary>reply</summary><pre>{}</pre></details>{}</div>",
            esc(&e.planner),
            esc(e.model.as_deref().unwrap_or("")),
            esc(&e.outcome),
            e.input_tokens.map_or("-".into(), |t| t.to_string()),
            e.output_tokens.map_or("-".into(), |t| t.to_string()),
            number(&format!("turn:{}:cost", turn.id), e.cost_usd, 4),
            esc(&e.reasoning),
            esc(&e.prompt),
            esc(&e.reply),
            e.detail
                .as_ref()
                .map(|d| format!("<p class=\"error\">{}</p>", esc(d)))
                .unwrap_or_default(),
        );
    }
    body.push_str("</section>");

    // Logs and downloads.
    body.push_str("<section><h2>Logs and downloads</h2><ul class=\"files\">");
    let _ = write!(
        body,
        "<li><a href=\"/api/experiments/{id}/rd.json\" id=\"download-rd-json\">RD data (JSON)</a></li>\
         <li><a href=\"/api/experiments/{id}/rd.csv\" id=\"download-rd-csv\">RD data (CSV)</a></li>"
    );
    let prefix = format!("{}/", codeclab_lab::artifacts::experiment_prefix(id));
    for key in &detail.artifacts {
        let relative = key.strip_prefix(&prefix).unwrap_or(key);
        let _ = write!(
            body,
            "<li><a href=\"/experiments/{id}/files/{}\">{}</a></li>",
            esc(relative),
            esc(relative)
        );
    }
    body.push_str("</ul></section>");

    // Notes.
    body.push_str("<section><h2>Notes</h2><ul>");
    for note in &detail.notes {
        let _ = write!(
            body,
            "<li>{} <span class=\"dim\">{} · {}</span></li>",
            esc(&note.body),
            esc(&note.author),
            time(note.created_at)
        );
    }
    let _ = write!(
        body,
        "</ul><p class=\"admin\"><textarea id=\"note-input\" rows=\"3\" cols=\"60\" placeholder=\"a note on this experiment\"></textarea><br>\
         <button id=\"note-save\" type=\"button\" data-action=\"/api/admin/notes\" data-note=\"#note-input\" data-experiment=\"{id}\">Add note</button></p></section>"
    );
    Ok(Html(layout(
        &format!("Experiment {id}"),
        "/experiments",
        &body,
    )))
}
