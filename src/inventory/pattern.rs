//! Name patterns of the settings (snapshot filters, tenant rules): `*` and `?`, any case.

/// A case-insensitive name pattern with `*` (any run of characters) and `?` (one character).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(Vec<char>);

impl Pattern {
    pub fn new(text: &str) -> Pattern {
        Pattern(text.trim().to_lowercase().chars().collect())
    }

    pub fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.to_lowercase().chars().collect();
        // Iterative wildcard matching: remember the last `*` and where it resumed, so a
        // pattern like `*a*b*` costs O(pattern × name) rather than exponential backtracking.
        let (mut p, mut n) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while n < name.len() {
            match self.0.get(p) {
                Some('*') => {
                    star = Some((p, n));
                    p += 1;
                }
                Some(&c) if c == '?' || c == name[n] => {
                    p += 1;
                    n += 1;
                }
                _ => match star {
                    Some((sp, sn)) => {
                        p = sp + 1;
                        n = sn + 1;
                        star = Some((sp, sn + 1));
                    }
                    None => return false,
                },
            }
        }
        self.0[p..].iter().all(|c| *c == '*')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_names_with_wildcards_in_any_case() {
        let p = Pattern::new("Tenant-*");
        assert!(p.matches("tenant-acme"));
        assert!(p.matches("TENANT-"));
        assert!(!p.matches("my-tenant-acme"));
        assert!(Pattern::new("*-dr-??").matches("db01-DR-02"));
        assert!(!Pattern::new("*-dr-??").matches("db01-dr-2"));
        assert!(Pattern::new("*").matches(""));
        assert!(Pattern::new("a*b*c").matches("aXXbYYbc"));
        assert!(!Pattern::new("a*b*c").matches("aXXbYYb"));
        assert!(Pattern::new(" exact ").matches("EXACT"));
    }
}
