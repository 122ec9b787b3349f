//! Trains the learned in-loop filter's shipped models offline, each on its own pairs of source
//! and reconstruction clips (8-bit Y4M, the codec's own reconstructions with the filter off),
//! in the order the stream will name them:
//!
//! ```text
//! codeclab-filter-train --steps N --provenance PROVENANCE.json -o shipped_model.rs \
//!     --model LABEL SOURCE.y4m RECONSTRUCTION.y4m [SOURCE.y4m RECONSTRUCTION.y4m ...] \
//!     [--model LABEL ...]
//! ```
//! The models have the default genome's filter shape. The output, a Rust source the codec
//! compiles in, holds them as JSON with their provenance: what `PROVENANCE.json` says of the
//! pictures, and per model its label and the clips, frames, steps and losses of its training.

use codeclab_codec::Genome;
use codeclab_codec::decoder::coded_size;
use codeclab_codec::learned::train::{Example, SEED, Schedule, train};
use codeclab_codec::learned::{FilterModel, FilterShape};
use codeclab_codec::picture::{PaddedPlane, Picture};
use codeclab_video::{AnyFrame, Y4mReader};
use std::process::ExitCode;

const USAGE: &str = "usage: codeclab-filter-train --steps N --provenance PROVENANCE.json -o shipped_model.rs --model LABEL SOURCE.y4m RECONSTRUCTION.y4m [...] [--model LABEL ...]";

/// The luma planes of every frame of an 8-bit clip, edges replicated, and its visible size.
struct Clip {
    planes: Vec<PaddedPlane<u8>>,
    visible: (usize, usize),
}

fn luma_planes(path: &str) -> Result<Clip, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let mut reader =
        Y4mReader::new(std::io::BufReader::new(file), path).map_err(|e| format!("{path}: {e}"))?;
    let format = *reader.format();
    let coded = coded_size(&format);
    let mut planes = Vec::new();
    while let Some(frame) = reader.read_frame().map_err(|e| format!("{path}: {e}"))? {
        let AnyFrame::U8(frame) = frame else {
            return Err(format!("{path}: the shipped model trains on 8-bit clips"));
        };
        let mut picture = Picture::new(coded.0, coded.1, 8);
        picture.load(&frame);
        let [mut luma, _, _] = picture.planes;
        luma.extend_edges();
        planes.push(luma);
    }
    Ok(Clip {
        planes,
        visible: (format.width, format.height),
    })
}

/// The clips one model learns from.
struct ModelClips {
    label: String,
    clips: Vec<String>,
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (mut steps, mut provenance, mut output) = (None, None, None);
    let mut models: Vec<ModelClips> = Vec::new();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--steps" => {
                steps = Some(
                    value("--steps")?
                        .parse::<u32>()
                        .map_err(|e| format!("--steps: {e}"))?,
                )
            }
            "--provenance" => provenance = Some(value("--provenance")?),
            "-o" | "--output" => output = Some(value("-o")?),
            "--model" => models.push(ModelClips {
                label: value("--model")?,
                clips: Vec::new(),
            }),
            _ => match models.last_mut() {
                Some(model) => model.clips.push(arg),
                None => return Err(format!("{arg}: clips follow a --model LABEL")),
            },
        }
    }
    let (Some(steps), Some(provenance), Some(output)) = (steps, provenance, output) else {
        return Err("--steps, --provenance and -o are needed".into());
    };
    if models.is_empty() {
        return Err("at least one --model is needed".into());
    }
    if let Some(model) = models
        .iter()
        .find(|m| m.clips.is_empty() || m.clips.len() % 2 != 0)
    {
        return Err(format!(
            "{}: clips come in pairs, source then reconstruction",
            model.label
        ));
    }
    let text = std::fs::read_to_string(&provenance).map_err(|e| format!("{provenance}: {e}"))?;
    let mut provenance: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{provenance}: {e}"))?;
    let shape = Genome {
        learned_filter: true,
        ..Genome::default()
    }
    .learned_filter_shape()
    .expect("the filter is on");
    let mut trainings = Vec::new();
    let mut trained_models = Vec::new();
    for model in &models {
        let (training, trained) = train_model(model, shape, steps)?;
        trainings.push(training);
        trained_models.push(trained);
    }
    provenance["training"] = serde_json::Value::Array(trainings);
    let file = serde_json::json!({"provenance": provenance, "models": trained_models});
    let json = serde_json::to_string(&file).map_err(|e| e.to_string())?;
    let source = format!(
        "//! The shipped models of the learned filter with their provenance, as `codeclab-filter-train`\n\
         //! wrote them (`scripts/train-shipped-filter.sh`). A Rust source, so that they travel with the\n\
         //! codec's sources wherever they are built.\n\n\
         pub(super) const SHIPPED_JSON: &str = r##\"{json}\"##;\n"
    );
    std::fs::write(&output, source).map_err(|e| format!("{output}: {e}"))
}

/// Trains one model on its clips: what its provenance says of the training, and the model.
fn train_model(
    model: &ModelClips,
    shape: FilterShape,
    steps: u32,
) -> Result<(serde_json::Value, FilterModel), String> {
    let mut pictures = Vec::new();
    let mut pairs = Vec::new();
    for pair in model.clips.chunks_exact(2) {
        let (sources, reconstructions) = (luma_planes(&pair[0])?, luma_planes(&pair[1])?);
        let visible = sources.visible;
        if visible != reconstructions.visible
            || sources.planes.len() != reconstructions.planes.len()
        {
            return Err(format!(
                "{} and {} differ in size or length",
                pair[0], pair[1]
            ));
        }
        pairs.push(serde_json::json!({
            "source": pair[0].rsplit('/').next(),
            "reconstruction": pair[1].rsplit('/').next(),
            "frames": sources.planes.len(),
        }));
        let pairs_of_planes = sources.planes.into_iter().zip(reconstructions.planes);
        pictures.extend(pairs_of_planes.map(|p| (p, visible)));
    }
    let examples: Vec<Example<'_, u8>> = pictures
        .iter()
        .map(|((source, reconstruction), visible)| Example {
            reconstruction,
            source,
            visible: *visible,
        })
        .collect();
    let schedule = Schedule {
        steps,
        seed: SEED,
        start: None,
    };
    let trained = train(shape, &examples, &schedule).map_err(|e| e.to_string())?;
    let mean = |losses: &[f32]| losses.iter().sum::<f32>() / losses.len().max(1) as f32;
    let tail = trained.losses.len().min(100);
    let (first, last) = (
        mean(&trained.losses[..tail]),
        mean(&trained.losses[trained.losses.len() - tail..]),
    );
    eprintln!(
        "{}: trained {steps} steps on {} pictures: loss {first:.5} -> {last:.5}",
        model.label,
        examples.len(),
    );
    let training = serde_json::json!({
        "label": model.label,
        "clips": pairs,
        "steps": steps,
        "seed": SEED,
        "loss_first_100_steps": first,
        "loss_last_100_steps": last,
    });
    Ok((training, trained.model))
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}
