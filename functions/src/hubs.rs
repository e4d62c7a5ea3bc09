//! Which roles may use which of the three hubs (the hub names live in `meschain_model::hubs`).
//!
//! Roles come only from a verified identity (see `auth`). Admins may open any hub (they
//! supervise marketplaces and see dashboards); marketplace managers their own hub and the
//! dashboard; everyone else the dashboard only.

pub use meschain_model::hubs::Hub;

pub mod roles {
    pub const SUPER_ADMIN: &str = "super_admin";
    pub const ADMIN: &str = "admin";
    pub const MARKETPLACE_MANAGER: &str = "marketplace_manager";
}

fn has(roles: &[String], role: &str) -> bool {
    roles.iter().any(|r| r.eq_ignore_ascii_case(role))
}

pub fn is_admin(roles: &[String]) -> bool {
    has(roles, roles::SUPER_ADMIN) || has(roles, roles::ADMIN)
}

/// The hub a caller with `roles` gets when they do not ask for one.
pub fn default_hub(roles: &[String]) -> Hub {
    if is_admin(roles) {
        Hub::Admin
    } else if has(roles, roles::MARKETPLACE_MANAGER) {
        Hub::Marketplace
    } else {
        Hub::Dashboard
    }
}

/// Whether a caller with `roles` may connect to `hub`.
pub fn may_use(roles: &[String], hub: Hub) -> bool {
    match hub {
        Hub::Admin => is_admin(roles),
        Hub::Marketplace => is_admin(roles) || has(roles, roles::MARKETPLACE_MANAGER),
        Hub::Dashboard => true,
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum HubChoiceError {
    UnknownHub,
    Forbidden(Hub),
}

/// Picks the hub for a caller: the one asked for if their roles allow it, else their default.
pub fn choose(roles: &[String], requested: Option<&str>) -> Result<Hub, HubChoiceError> {
    match requested {
        None => Ok(default_hub(roles)),
        Some(name) => {
            let hub = Hub::from_name(name).ok_or(HubChoiceError::UnknownHub)?;
            if may_use(roles, hub) { Ok(hub) } else { Err(HubChoiceError::Forbidden(hub)) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn test_defaults() {
        assert_eq!(default_hub(&r(&["super_admin"])), Hub::Admin);
        assert_eq!(default_hub(&r(&["admin"])), Hub::Admin);
        assert_eq!(default_hub(&r(&["marketplace_manager"])), Hub::Marketplace);
        assert_eq!(default_hub(&r(&["viewer"])), Hub::Dashboard);
        assert_eq!(default_hub(&r(&[])), Hub::Dashboard);
        assert_eq!(default_hub(&r(&["viewer", "ADMIN"])), Hub::Admin);
    }

    #[test]
    fn test_authorization_table() {
        use Hub::*;
        let table = [
            (r(&["super_admin"]), [true, true, true]),
            (r(&["admin"]), [true, true, true]),
            (r(&["marketplace_manager"]), [false, true, true]),
            (r(&["viewer"]), [false, false, true]),
            (r(&[]), [false, false, true]),
        ];
        for (roles, allowed) in table {
            for (hub, ok) in [Admin, Marketplace, Dashboard].into_iter().zip(allowed) {
                assert_eq!(may_use(&roles, hub), ok, "{roles:?} {hub}");
            }
        }
    }

    #[test]
    fn test_choose() {
        assert_eq!(choose(&r(&["viewer"]), Some("meschainadminhub")), Err(HubChoiceError::Forbidden(Hub::Admin)));
        assert_eq!(choose(&r(&["admin"]), Some("MesChainDashboardHub")), Ok(Hub::Dashboard));
        assert_eq!(choose(&r(&["admin"]), Some("chat")), Err(HubChoiceError::UnknownHub));
        assert_eq!(choose(&r(&["marketplace_manager"]), None), Ok(Hub::Marketplace));
    }
}
