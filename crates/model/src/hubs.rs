//! The three hubs of the original design. Which roles may use which is the handler's policy
//! (`meschain_functions::hubs`); only the names live here.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hub {
    Admin,
    Marketplace,
    Dashboard,
}

impl Hub {
    pub const ALL: [Hub; 3] = [Hub::Admin, Hub::Marketplace, Hub::Dashboard];

    pub fn name(self) -> &'static str {
        match self {
            Hub::Admin => "MesChainAdminHub",
            Hub::Marketplace => "MesChainMarketplaceHub",
            Hub::Dashboard => "MesChainDashboardHub",
        }
    }

    /// Hub names are case-insensitive on the service (it lower-cases them), so here too.
    pub fn from_name(name: &str) -> Option<Hub> {
        Hub::ALL.into_iter().find(|h| h.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_names_are_case_insensitive() {
        for hub in Hub::ALL {
            assert_eq!(Hub::from_name(&hub.name().to_lowercase()), Some(hub));
            assert_eq!(hub.to_string(), hub.name());
        }
        assert_eq!(Hub::from_name("chat"), None);
    }
}
