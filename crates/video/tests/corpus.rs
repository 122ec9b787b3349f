//! The corpus manifest: adding, generating, importing, verifying, and the real shared clips.

use std::path::{Path, PathBuf};

use codeclab_video::corpus::{
    ClipLabel, ClipSet, ClipStatus, Corpus, CorpusError, EnsureOutcome, Silent, hash_file,
};
use codeclab_video::{GeneratorSpec, Pattern, Rational, VideoError, ffmpeg, shared};

fn label(id: &str, set: ClipSet) -> ClipLabel {
    ClipLabel {
        id: id.to_string(),
        class: "synthetic:test".to_string(),
        source: "tests".to_string(),
        set,
    }
}

fn small_spec(pattern: Pattern, seed: u64) -> GeneratorSpec {
    GeneratorSpec {
        pattern,
        width: 33,
        height: 19,
        frames: 5,
        fps: Rational::new(30000, 1001),
        seed,
        bit_depth: 8,
    }
}

fn statuses(corpus: &Corpus) -> Vec<(String, ClipStatus)> {
    corpus
        .verify(&mut Silent)
        .unwrap()
        .into_iter()
        .map(|c| (c.id, c.status))
        .collect()
}

#[test]
fn generated_clips_are_recorded_saved_and_verified() {
    let data = tempfile::tempdir().unwrap();
    let mut corpus = Corpus::open(data.path()).unwrap();
    assert!(corpus.clips().is_empty());
    let clip = corpus
        .generate(
            &small_spec(Pattern::Shapes, 1),
            label("shapes", ClipSet::Dev),
            &mut Silent,
        )
        .unwrap()
        .clone();
    assert_eq!((clip.width, clip.height, clip.frames), (33, 19, 5));
    assert_eq!(clip.path, "clips/shapes.y4m");
    assert_eq!(
        clip.sha256,
        hash_file(&corpus.clip_path(&clip), &mut Silent).unwrap()
    );
    corpus
        .generate(
            &small_spec(Pattern::Pan, 2),
            label("secret", ClipSet::Holdout),
            &mut Silent,
        )
        .unwrap();
    corpus.save().unwrap();

    let reloaded = Corpus::open(data.path()).unwrap();
    assert_eq!(reloaded.clips(), corpus.clips());
    let dev: Vec<&str> = reloaded.dev_clips().map(|c| c.id.as_str()).collect();
    assert_eq!(dev, ["shapes"]);
    let text = std::fs::read_to_string(reloaded.manifest_path()).unwrap();
    assert!(text.contains("fps = \"30000/1001\""), "{text}");
    assert!(text.contains("set = \"holdout\""), "{text}");
    assert!(text.contains("pattern = \"pan\""), "{text}");
    assert!(
        statuses(&reloaded)
            .iter()
            .all(|(_, s)| *s == ClipStatus::Ok)
    );
}

#[test]
fn verify_detects_changed_and_missing_files() {
    let data = tempfile::tempdir().unwrap();
    let mut corpus = Corpus::open(data.path()).unwrap();
    for (id, seed) in [("a", 1), ("b", 2), ("c", 3)] {
        corpus
            .generate(
                &small_spec(Pattern::Plasma, seed),
                label(id, ClipSet::Dev),
                &mut Silent,
            )
            .unwrap();
    }
    let path_of = |id: &str| corpus.clip_path(corpus.clip(id).unwrap());
    // Flip one sample byte near the end of `a`: same length, different content.
    let mut bytes = std::fs::read(path_of("a")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(path_of("a"), &bytes).unwrap();
    std::fs::remove_file(path_of("b")).unwrap();

    let found = statuses(&corpus);
    assert!(
        matches!(found[0], (ref id, ClipStatus::Changed { .. }) if id == "a"),
        "{found:?}"
    );
    assert_eq!(found[1], ("b".to_string(), ClipStatus::Missing));
    assert_eq!(found[2], ("c".to_string(), ClipStatus::Ok));
}

#[test]
fn add_copies_an_outside_file_and_probes_it() {
    let data = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let mut scratch = Corpus::load(outside.path()).unwrap();
    let made = scratch
        .generate(
            &small_spec(Pattern::Grain, 4),
            label("made", ClipSet::Dev),
            &mut Silent,
        )
        .unwrap()
        .clone();
    let file = scratch.clip_path(&made);

    let mut corpus = Corpus::open(data.path()).unwrap();
    let added = corpus
        .add_y4m(&file, label("grain", ClipSet::Holdout), &mut Silent)
        .unwrap()
        .clone();
    assert_eq!(added.path, "clips/grain.y4m");
    assert!(corpus.clip_path(&added).is_file());
    assert_eq!(added.sha256, made.sha256);
    assert_eq!((added.frames, added.fps), (5, Rational::new(30000, 1001)));
    assert_eq!(added.generator, None);

    // A file already inside the corpus is recorded where it is, once.
    let err = corpus
        .add_y4m(
            &corpus.clip_path(&added),
            label("again", ClipSet::Dev),
            &mut Silent,
        )
        .unwrap_err();
    assert!(
        matches!(err, CorpusError::PathInUse { ref id, .. } if id == "grain"),
        "{err}"
    );
}

#[test]
fn bad_ids_duplicates_and_broken_files_are_refused_cleanly() {
    let data = tempfile::tempdir().unwrap();
    let mut corpus = Corpus::open(data.path()).unwrap();
    for bad in ["", "Upper", "has space", "../escape", ".hidden"] {
        let err = corpus
            .generate(
                &small_spec(Pattern::Plasma, 1),
                label(bad, ClipSet::Dev),
                &mut Silent,
            )
            .unwrap_err();
        assert!(matches!(err, CorpusError::BadId(_)), "{bad}: {err}");
    }
    corpus
        .generate(
            &small_spec(Pattern::Plasma, 1),
            label("p", ClipSet::Dev),
            &mut Silent,
        )
        .unwrap();
    let err = corpus
        .generate(
            &small_spec(Pattern::Plasma, 2),
            label("p", ClipSet::Dev),
            &mut Silent,
        )
        .unwrap_err();
    assert!(matches!(err, CorpusError::DuplicateId(_)), "{err}");

    let broken = data.path().join("broken.y4m");
    std::fs::write(&broken, b"YUV4MPEG2 W4 H4 F25:1\nFRAME\n\x01\x02").unwrap();
    let err = corpus
        .add_y4m(&broken, label("broken", ClipSet::Dev), &mut Silent)
        .unwrap_err();
    assert!(
        matches!(
            err,
            CorpusError::Video(VideoError::Truncated { offset: 30, .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("broken.y4m"), "{err}");
    assert!(!data.path().join("corpus/clips/broken.y4m").exists());
    assert_eq!(corpus.clips().len(), 1);
}

#[test]
fn a_corrupt_manifest_is_an_error_naming_it() {
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(data.path().join("corpus")).unwrap();
    std::fs::write(data.path().join("corpus/corpus.toml"), "[[clip]]\nid = 3\n").unwrap();
    let err = Corpus::open(data.path()).unwrap_err();
    assert!(matches!(err, CorpusError::Manifest { .. }), "{err}");
    assert!(err.to_string().contains("corpus.toml"), "{err}");
}

/// The libvmaf fixture manifest's sha256 for a source decoded with `frames` and `pix_fmt`.
fn expected_decode_sha256(source: &str, frames: Option<u64>, pix_fmt: &str) -> String {
    let path = shared::shared_dir()
        .expect("shared folder")
        .join("vmaf/fixtures/expected.json");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    manifest["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| &pair["ref"])
        .find(|r| {
            r["source"] == source && r["frames"].as_u64() == frames && r["pix_fmt"] == pix_fmt
        })
        .and_then(|r| r["y4m_sha256"].as_str())
        .unwrap_or_else(|| panic!("no {source} {frames:?} {pix_fmt} in the fixture manifest"))
        .to_string()
}

/// A data folder kept under the target directory, so the real clips are decoded once.
fn cached_data_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

#[test]
fn real_clips_are_decoded_once_and_match_the_reference_decode() {
    if !ffmpeg::available() {
        eprintln!("ffmpeg not installed: skipping the real-clip import");
        return;
    }
    let data = cached_data_dir("corpus-real-clips");
    let mut corpus = Corpus::open(&data).unwrap();
    let first = corpus.ensure_real_clips(&mut Silent).unwrap();
    assert_eq!(first.len(), 2);
    corpus.save().unwrap();

    let mut reopened = Corpus::open(&data).unwrap();
    let second = reopened.ensure_real_clips(&mut Silent).unwrap();
    assert!(
        second.iter().all(|(_, o)| *o == EnsureOutcome::Cached),
        "{second:?}"
    );

    let carphone = reopened.clip("carphone_qcif").unwrap();
    assert_eq!(
        carphone.sha256,
        expected_decode_sha256("carphone_qcif.mp4", None, "yuv420p")
    );
    assert_eq!(
        (carphone.width, carphone.height, carphone.frames),
        (176, 144, 120)
    );
    assert_eq!(carphone.fps, Rational::new(30000, 1001));
    assert_eq!(carphone.class, "talking-head");
    let bikes = reopened.clip("bikes_640x272").unwrap();
    assert_eq!((bikes.width, bikes.height, bikes.frames), (640, 272, 250));
    assert_eq!(bikes.fps, Rational::new(25, 1));
    assert!(
        statuses(&reopened)
            .iter()
            .all(|(_, s)| *s == ClipStatus::Ok)
    );
}

#[test]
fn a_changed_real_clip_is_reimported_keeping_its_labels() {
    if !ffmpeg::available() {
        eprintln!("ffmpeg not installed: skipping the real-clip re-import");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let corpus_dir = data.path().join("corpus");
    std::fs::create_dir_all(corpus_dir.join("clips")).unwrap();
    std::fs::write(corpus_dir.join("clips/carphone_qcif.y4m"), b"stale").unwrap();
    std::fs::write(
        corpus_dir.join("corpus.toml"),
        r#"
[[clip]]
id = "carphone_qcif"
path = "clips/carphone_qcif.y4m"
width = 176
height = 144
bit_depth = 8
chroma = "420"
fps = "30000/1001"
frames = 120
sha256 = "0000"
class = "face-in-car"
source = "edited by hand"
set = "holdout"
"#,
    )
    .unwrap();
    let mut corpus = Corpus::open(data.path()).unwrap();
    let shared_corpus = shared::corpus_dir().expect("shared corpus");
    let outcomes = corpus.ensure_real_clips_from(&shared_corpus, &mut Silent);
    let outcomes = outcomes.unwrap();
    assert_eq!(
        outcomes[0],
        ("carphone_qcif".to_string(), EnsureOutcome::Imported)
    );
    let carphone = corpus.clip("carphone_qcif").unwrap();
    assert_eq!(
        carphone.sha256,
        expected_decode_sha256("carphone_qcif.mp4", None, "yuv420p")
    );
    assert_eq!(
        (
            carphone.class.as_str(),
            carphone.source.as_str(),
            carphone.set
        ),
        ("face-in-car", "edited by hand", ClipSet::Holdout)
    );
}

#[test]
fn import_decodes_any_container_and_depth() {
    if !ffmpeg::available() {
        eprintln!("ffmpeg not installed: skipping import");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let mut corpus = Corpus::open(data.path()).unwrap();
    let bikes = shared::corpus_dir().unwrap().join("bikes_640x272.mp4");
    let eight = corpus
        .import(
            &bikes,
            label("bikes60", ClipSet::Dev),
            Some(60),
            "yuv420p",
            &mut Silent,
        )
        .unwrap()
        .clone();
    assert_eq!(
        eight.sha256,
        expected_decode_sha256("bikes_640x272.mp4", Some(60), "yuv420p")
    );
    assert_eq!((eight.frames, eight.bit_depth), (60, 8));
    let ten = corpus
        .import(
            &bikes,
            label("bikes30-10bit", ClipSet::Dev),
            Some(30),
            "yuv420p10le",
            &mut Silent,
        )
        .unwrap()
        .clone();
    assert_eq!(
        ten.sha256,
        expected_decode_sha256("bikes_640x272.mp4", Some(30), "yuv420p10le")
    );
    assert_eq!((ten.frames, ten.bit_depth), (30, 10));

    let err = corpus
        .import(
            &data.path().join("no-such-file.mp4"),
            label("nothing", ClipSet::Dev),
            None,
            "yuv420p",
            &mut Silent,
        )
        .unwrap_err();
    assert!(matches!(err, CorpusError::Ffmpeg(_)), "{err}");
    assert!(!data.path().join("corpus/clips/nothing.y4m").exists());
}
