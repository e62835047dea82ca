//! Memorable names: Adverb + Adjective + Colour + Breed, in CamelCase
//! (`WildlySublimeDandelionBengal`). Four slots give about 4.6 × 10^10
//! names, far beyond the 2^32 needed to make guessing image URLs impractical
//! (the original app's 358,904 could be walked in minutes).

use std::collections::VecDeque;
use std::sync::Mutex;

use rand::Rng;
use rand::seq::IndexedRandom;

const ADVERBS: &str = include_str!("names/adverbs.txt");
const ADJECTIVES: &str = include_str!("names/adjectives.txt");
const COLOURS: &str = include_str!("names/colours.txt");
const BREEDS: &str = include_str!("names/breeds.txt");

/// The type word the original app appended to every page URL.
pub const DEFAULT_TYPE: &str = "Kitty";

fn words(list: &'static str) -> Vec<&'static str> {
    list.lines().filter(|l| !l.is_empty()).collect()
}

/// A generated name: the CamelCase words and their lower-case token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    pub generated: String,
    pub token: String,
}

/// Draws names from the four lists, loaded once.
pub struct NameGenerator {
    slots: [Vec<&'static str>; 4],
    /// Names handed out before any random one: lets a test make the
    /// generator repeat itself, which chance never will.
    scripted: Mutex<VecDeque<Name>>,
}

impl Default for NameGenerator {
    fn default() -> Self {
        Self {
            slots: [
                words(ADVERBS),
                words(ADJECTIVES),
                words(COLOURS),
                words(BREEDS),
            ],
            scripted: Mutex::new(VecDeque::new()),
        }
    }
}

impl NameGenerator {
    /// A generator that first hands out `names` (CamelCase words), in
    /// order, then random ones.
    pub fn scripted(names: &[&str]) -> Self {
        let generator = Self::default();
        if let Ok(mut queue) = generator.scripted.lock() {
            queue.extend(names.iter().map(|n| Name {
                generated: n.to_string(),
                token: n.to_ascii_lowercase(),
            }));
        }
        generator
    }

    pub fn generate(&self, rng: &mut impl Rng) -> Name {
        if let Some(name) = self.scripted.lock().ok().and_then(|mut q| q.pop_front()) {
            return name;
        }
        let mut generated = String::with_capacity(48);
        for slot in &self.slots {
            if let Some(word) = slot.choose(rng) {
                generated.push_str(word);
            }
        }
        let token = generated.to_ascii_lowercase();
        Name { generated, token }
    }

    /// How many distinct word combinations there are.
    pub fn combinations(&self) -> u128 {
        self.slots.iter().map(|s| s.len() as u128).product()
    }
}

/// `tiny` → `Tiny`, for names like `TinySublimeDandelionBengalKitty`.
pub fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// The token a page path refers to: lower-cased, with the trailing type word
/// (`Kitty`) removed, as the original app looked names up.
pub fn token_from_path(segment: &str) -> Option<String> {
    if segment.is_empty()
        || segment.len() > 128
        || !segment.bytes().all(|b| b.is_ascii_alphabetic())
    {
        return None;
    }
    let lower = segment.to_ascii_lowercase();
    let type_word = DEFAULT_TYPE.to_ascii_lowercase();
    let token = lower.strip_suffix(&type_word).unwrap_or(&lower);
    (!token.is_empty()).then(|| token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_are_at_least_two_to_the_32_names() {
        assert!(NameGenerator::default().combinations() >= 1u128 << 32);
    }

    #[test]
    fn every_word_is_camel_case_ascii_and_unique_across_lists() {
        let mut seen = std::collections::HashSet::new();
        for list in [ADVERBS, ADJECTIVES, COLOURS, BREEDS] {
            for word in words(list) {
                assert!(word.bytes().all(|b| b.is_ascii_alphabetic()), "{word}");
                assert!(word.as_bytes()[0].is_ascii_uppercase(), "{word}");
                assert!(seen.insert(word.to_ascii_lowercase()), "duplicate {word}");
                assert!(!word.to_ascii_lowercase().ends_with("kitty"), "{word}");
            }
        }
    }

    #[test]
    fn a_name_is_four_words_and_its_token_is_lower_case() {
        let g = NameGenerator::default();
        let name = g.generate(&mut rand::rng());
        assert_eq!(name.token, name.generated.to_ascii_lowercase());
        let capitals = name
            .generated
            .bytes()
            .filter(u8::is_ascii_uppercase)
            .count();
        assert!(capitals >= 4, "{}", name.generated);
    }

    #[test]
    fn page_paths_ignore_case_and_the_type_word() {
        assert_eq!(
            token_from_path("SublimeDandelionBengalKitty").as_deref(),
            Some("sublimedandelionbengal")
        );
        assert_eq!(
            token_from_path("sublimedandelionbengal").as_deref(),
            Some("sublimedandelionbengal")
        );
        assert_eq!(token_from_path("Kitty"), None);
        assert_eq!(token_from_path("../etc"), None);
        assert_eq!(token_from_path(""), None);
    }
}
