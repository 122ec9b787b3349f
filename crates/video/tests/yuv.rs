//! Raw `.yuv` reader and writer.

use codeclab_video::{
    AnyFrame, ChromaSampling, Frame, Plane, Rational, VideoError, VideoFormat, YuvReader, YuvWriter,
};
use proptest::prelude::*;

fn format(width: usize, height: usize, bit_depth: u8, chroma: ChromaSampling) -> VideoFormat {
    VideoFormat {
        width,
        height,
        bit_depth,
        chroma,
        fps: Rational::new(25, 1),
        aspect: Rational::new(0, 0),
    }
}

fn counting_frame(fmt: &VideoFormat, start: u32) -> AnyFrame {
    let modulus = fmt.peak() + 1;
    let plane_values = |p: usize| {
        let (w, h) = fmt.plane_size(p);
        (
            w,
            h,
            (0..w * h).map(move |i| (start + (p * 1000 + i) as u32 * 7) % modulus),
        )
    };
    let count = fmt.chroma.plane_count();
    if fmt.bit_depth > 8 {
        AnyFrame::U16(Frame {
            planes: (0..count)
                .map(|p| {
                    let (w, h, v) = plane_values(p);
                    Plane::from_vec(w, h, v.map(|s| s as u16).collect()).unwrap()
                })
                .collect(),
        })
    } else {
        AnyFrame::U8(Frame {
            planes: (0..count)
                .map(|p| {
                    let (w, h, v) = plane_values(p);
                    Plane::from_vec(w, h, v.map(|s| s as u8).collect()).unwrap()
                })
                .collect(),
        })
    }
}

fn read_all(bytes: &[u8], fmt: &VideoFormat) -> Result<Vec<AnyFrame>, VideoError> {
    let mut reader = YuvReader::new(bytes, fmt, "raw.yuv")?;
    let mut frames = Vec::new();
    while let Some(frame) = reader.read_frame()? {
        frames.push(frame);
    }
    Ok(frames)
}

#[test]
fn layout_is_planar_with_little_endian_deep_samples() {
    let fmt = format(2, 1, 10, ChromaSampling::Cs422);
    let mut frame = Frame::<u16>::new_grey(&fmt);
    frame.planes[0].set(1, 0, 0x0302);
    let mut writer = YuvWriter::new(Vec::new(), &fmt).unwrap();
    writer.write_frame(&AnyFrame::U16(frame)).unwrap();
    let bytes = writer.finish().unwrap();
    assert_eq!(bytes, vec![0x00, 0x02, 0x02, 0x03, 0x00, 0x02, 0x00, 0x02]);
}

#[test]
fn a_partial_last_frame_is_a_truncation_error() {
    let fmt = format(3, 3, 8, ChromaSampling::Cs420); // 9 + 4 + 4 = 17 bytes a frame
    let mut bytes = vec![7u8; 17 * 2];
    bytes.extend([1, 2, 3]);
    let err = read_all(&bytes, &fmt).unwrap_err();
    match &err {
        VideoError::Truncated {
            offset,
            frame,
            got,
            expected,
            ..
        } => assert_eq!((*offset, *frame, *got, *expected), (37, 2, 3, 17)),
        other => panic!("expected a truncation, got {other:?}"),
    }
    assert!(err.to_string().starts_with("raw.yuv at byte 37"), "{err}");
}

#[test]
fn deep_samples_above_the_peak_are_rejected() {
    let fmt = format(1, 1, 12, ChromaSampling::Mono);
    let err = read_all(&5000u16.to_le_bytes(), &fmt).unwrap_err();
    assert!(
        matches!(err, VideoError::Malformed { offset: 0, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("above the 12-bit peak 4095"),
        "{err}"
    );
}

#[test]
fn open_reports_frame_count_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let fmt = format(5, 3, 8, ChromaSampling::Cs444);
    let path = dir.path().join("clip.yuv");
    let mut writer = YuvWriter::create(&path, &fmt).unwrap();
    for i in 0..4 {
        writer.write_frame(&counting_frame(&fmt, i)).unwrap();
    }
    writer.finish().unwrap();
    let mut reader = YuvReader::open(&path, &fmt).unwrap();
    assert_eq!(reader.frame_count_hint(), Some(4));
    let mut frame = AnyFrame::new_grey(&fmt);
    let mut count = 0;
    while reader.read_frame_into(&mut frame).unwrap() {
        assert_eq!(frame, counting_frame(&fmt, count));
        count += 1;
    }
    assert_eq!(count, 4);

    let err = YuvReader::open(&dir.path().join("nope.yuv"), &fmt)
        .err()
        .expect("missing file");
    assert!(matches!(err, VideoError::Open { .. }));
    assert!(err.to_string().contains("nope.yuv"), "{err}");
}

#[test]
fn invalid_formats_are_refused_up_front() {
    let bad = format(4, 4, 7, ChromaSampling::Cs420);
    assert!(matches!(
        YuvReader::new(&[][..], &bad, "x.yuv"),
        Err(VideoError::InvalidFormat { .. })
    ));
    assert!(matches!(
        YuvWriter::new(Vec::new(), &bad),
        Err(VideoError::InvalidFormat { .. })
    ));
}

proptest! {
    #[test]
    fn writer_then_reader_is_identity(
        width in 1usize..=21,
        height in 1usize..=13,
        bit_depth in 8u8..=16,
        chroma in prop_oneof![
            Just(ChromaSampling::Cs420),
            Just(ChromaSampling::Cs422),
            Just(ChromaSampling::Cs444),
            Just(ChromaSampling::Mono)
        ],
        starts in prop::collection::vec(any::<u32>(), 0..4),
    ) {
        let fmt = format(width, height, bit_depth, chroma);
        let frames: Vec<AnyFrame> = starts.iter().map(|&s| counting_frame(&fmt, s % 65536)).collect();
        let mut writer = YuvWriter::new(Vec::new(), &fmt).unwrap();
        for frame in &frames {
            writer.write_frame(frame).unwrap();
        }
        let bytes = writer.finish().unwrap();
        prop_assert_eq!(bytes.len(), fmt.frame_bytes() * frames.len());
        prop_assert_eq!(read_all(&bytes, &fmt).unwrap(), frames);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        bit_depth in 8u8..=16,
    ) {
        let _ = read_all(&bytes, &format(3, 5, bit_depth, ChromaSampling::Cs420));
    }
}
