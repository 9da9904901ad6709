//! Hardware detection and the CPU fallback.

use kinema_media::Error;
use kinema_media::hw::{self, HwAccel, HwChoice};
use kinema_media::ladder::{self, Config};
use kinema_media::transcode::EncodeSettings;

use crate::support::{corpus, ff};

#[test]
fn detection_reports_every_api_and_resolves_choices() {
    let caps = hw::detect(ff()).unwrap();
    assert_eq!(caps.accels.len(), 3);
    assert_eq!(caps.resolve(HwChoice::None).unwrap(), None);
    // Auto picks a usable device or the CPU, never an unusable one.
    let auto = caps.resolve(HwChoice::Auto).unwrap();
    assert_eq!(auto, caps.usable_decoders().next());
    for status in &caps.accels {
        let resolved = caps.resolve(HwChoice::Require(status.accel));
        if status.device {
            assert_eq!(resolved.unwrap(), Some(status.accel));
        } else {
            assert!(matches!(resolved, Err(Error::HardwareUnavailable { .. })), "{status:?}");
        }
        assert!(!status.encoder_works || status.device);
    }
}

#[test]
fn a_ladder_asking_for_cuda_decodes_on_the_gpu_or_says_why_not() {
    let caps = hw::detect(ff()).unwrap();
    let cuda = caps.accels.iter().find(|a| a.accel == HwAccel::Cuda).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let config = Config {
        heights: vec![240],
        hwaccel: HwChoice::Require(HwAccel::Cuda),
        encode: EncodeSettings { preset: "ultrafast".into(), ..Default::default() },
        ..Default::default()
    };
    let result = ladder::run(ff(), &corpus("carphone_pristine.mp4"), &out, &config, &mut |_| {});
    if cuda.device {
        assert_eq!(result.unwrap().renditions.len(), 1);
    } else {
        let err = result.unwrap_err();
        assert!(matches!(err, Error::HardwareUnavailable { .. }), "{err}");
        assert!(!out.exists());
    }
}

#[test]
fn auto_falls_back_to_the_cpu() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let config = Config {
        heights: vec![240],
        hwaccel: HwChoice::Auto,
        encode: EncodeSettings { preset: "ultrafast".into(), ..Default::default() },
        ..Default::default()
    };
    let manifest =
        ladder::run(ff(), &corpus("carphone_pristine.mp4"), &out, &config, &mut |_| {}).unwrap();
    assert_eq!(manifest.renditions[0].segments.len(), 2);
}
