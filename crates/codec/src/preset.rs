//! Named speed levels, as x265's presets: each is a genome that trades encoding speed for
//! compression. `medium` is the default genome; a genome JSON may name a preset
//! (`"preset": "fast"`) to take its values for the fields it does not set.

use crate::error::{CodecError, Result};
use crate::genome::Genome;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Preset {
    Faster,
    Fast,
    #[default]
    Medium,
    Slow,
}

impl Preset {
    /// Fastest first.
    pub const ALL: [Preset; 4] = [Preset::Faster, Preset::Fast, Preset::Medium, Preset::Slow];

    pub fn name(self) -> &'static str {
        match self {
            Preset::Faster => "faster",
            Preset::Fast => "fast",
            Preset::Medium => "medium",
            Preset::Slow => "slow",
        }
    }

    /// The preset's genome. The measured speed and BD-rate of each level against `medium` are
    /// in the README's codec section.
    pub fn genome(self) -> Genome {
        let medium = Genome::default();
        match self {
            // Without RDOQ (half of medium's encoding time), with dead zones fit for plain
            // rounding, a narrower mode and motion search, only the cheapest motion-searched
            // prediction checked in full, and no split below an inter unit without residual.
            Preset::Faster => Genome {
                rdoq: false,
                deadzone_intra: 1.0 / 3.0,
                deadzone_inter: 1.0 / 6.0,
                intra_angular: false,
                intra_rdo_candidates: 1,
                me_range: 16,
                merge_candidates: 3,
                inter_rd_candidates: 1,
                clean_inter_stops_split: true,
                ..medium
            },
            // No split below an inter unit without residual saved about a fifth of the encoding
            // time for a PSNR-Y BD-rate of +0.3 to +1.1 % (bikes, carphone, the 720p pan and
            // scene cut, 60 frames each).
            Preset::Fast => Genome {
                intra_rdo_candidates: 1,
                me_range: 24,
                merge_candidates: 4,
                inter_rd_candidates: 2,
                clean_inter_stops_split: true,
                ..medium
            },
            Preset::Medium => medium,
            Preset::Slow => Genome {
                reference_frames: 2,
                inter_rd_margin: 1.0,
                residual_quadtree: true,
                intra_rdo_candidates: 3,
                me_range: 48,
                ..medium
            },
        }
    }
}

impl std::fmt::Display for Preset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Preset {
    type Err = CodecError;

    fn from_str(s: &str) -> Result<Self> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| CodecError::UnknownPreset(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_valid_and_named_once() {
        for preset in Preset::ALL {
            preset.genome().validate().unwrap();
            assert_eq!(preset.name().parse::<Preset>().unwrap(), preset);
        }
        assert_eq!(Preset::default().genome(), Genome::default());
        assert!(matches!(
            "veryslow".parse::<Preset>(),
            Err(CodecError::UnknownPreset(_))
        ));
        let genomes: Vec<Genome> = Preset::ALL.iter().map(|p| p.genome()).collect();
        for (i, a) in genomes.iter().enumerate() {
            assert!(genomes[i + 1..].iter().all(|b| b != a));
        }
    }
}
