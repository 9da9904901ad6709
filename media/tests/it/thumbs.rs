//! Posters and seek-preview sprites of real clips.

use kinema_media::probe;
use kinema_media::thumbs::{self, MAX_TILES};

use crate::support::{corpus, ff};

#[test]
fn real_clips_get_a_poster_and_a_sprite_of_their_frames() {
    let tmp = tempfile::tempdir().unwrap();
    for clip in ["bikes.mp4", "vtest.avi", "cityCC0.mpg"] {
        let input = corpus(clip);
        let duration = probe(ff(), &input).unwrap().duration;
        let poster = tmp.path().join(format!("{clip}.poster.jpg"));
        thumbs::poster(ff(), &input, duration, 360, &poster).unwrap();
        // 360 pixels tall, never taller than the source (bikes.mp4 is 272).
        let (width, height) = thumbs::jpeg_size(&std::fs::read(&poster).unwrap()).unwrap();
        let expected = if clip == "bikes.mp4" { 272 } else { 360 };
        assert_eq!(height, expected, "{clip}");
        assert!(width > height, "{clip}: {width}x{height}");
        let out = tmp.path().join(format!("{clip}.sprite.jpg"));
        let sprite = thumbs::sprite(ff(), &input, duration, 2.0, 90, 10, &out).unwrap();
        // A tile every 2 s, laid out 10 to a row, each as wide as the picture's shape makes it.
        let expected = (duration / 2.0).ceil() as u32;
        assert_eq!(sprite.count, expected, "{clip}: {sprite:?}");
        assert_eq!(sprite.every_ms, 2000, "{clip}");
        assert_eq!(sprite.rows, expected.div_ceil(sprite.columns), "{clip}: {sprite:?}");
        assert_eq!(sprite.height, 90);
        assert!(sprite.width > 90 && sprite.width.is_multiple_of(2), "{clip}: {sprite:?}");
    }
    // A long video keeps to MAX_TILES tiles: the interval grows.
    let input = corpus("bikes.mp4");
    let out = tmp.path().join("many.jpg");
    let sprite = thumbs::sprite(ff(), &input, 10.0, 0.01, 16, 24, &out).unwrap();
    assert_eq!(sprite.count, MAX_TILES);
    assert!(sprite.every_ms >= 41, "{sprite:?}");
    // What is not a video is refused with its name.
    let text = tmp.path().join("notes.mp4");
    std::fs::write(&text, "not a video").unwrap();
    let e = thumbs::poster(ff(), &text, 1.0, 180, &tmp.path().join("x.jpg")).unwrap_err();
    assert!(e.to_string().contains("notes.mp4"), "{e}");
}
