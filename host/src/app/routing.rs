//! Routing mistakes caught at load: a component's manifest entry checked
//! against the routes it declares (`berth:backend/routes`). Each finding is
//! a warning, not a refusal: the component still does what it says, but
//! probably not what its author meant.

use crate::core::handler::DeclaredRoute;
use crate::core::subject::Pattern;
use crate::manifest::ComponentConfig;

/// What is wrong with how `config` routes messages to `routes`: a
/// subscription no route takes, a route no subscription feeds (only when
/// it declares routes), and grants that let it send into its own
/// subscriptions.
pub(super) fn mistakes(config: &ComponentConfig, routes: &[DeclaredRoute]) -> Vec<String> {
    let parse = |p: &str| Pattern::parse(p).ok();
    let subscriptions: Vec<(&str, Pattern)> = config
        .subscribe
        .iter()
        .filter_map(|s| Some((s.subject.as_str(), parse(&s.subject)?)))
        .collect();
    let declared: Vec<(&DeclaredRoute, Pattern)> =
        routes.iter().filter_map(|r| Some((r, parse(&r.pattern)?))).collect();
    let name = &config.name;
    let mut found = Vec::new();
    if !declared.is_empty() {
        let list = || DeclaredRoute::list(routes);
        for (subject, pattern) in &subscriptions {
            if !declared.iter().any(|(_, r)| r.overlaps(pattern)) {
                found.push(format!(
                    "subscription `{subject}` of `{name}` reaches none of its routes ({}): its messages \
                     will be answered `unhandled`",
                    list()
                ));
            }
        }
        for (route, pattern) in &declared {
            if !subscriptions.iter().any(|(_, s)| s.overlaps(pattern)) {
                found.push(format!(
                    "route `{route}` of `{name}` is fed by none of its subscriptions"
                ));
            }
        }
    }
    let grants = config
        .publish
        .iter()
        .map(|g| ("publish", g))
        .chain(config.request.iter().map(|g| ("request", g)));
    for (what, grant) in grants {
        let Some(pattern) = parse(grant) else { continue };
        if let Some((subject, _)) = subscriptions.iter().find(|(_, s)| s.overlaps(&pattern)) {
            found.push(format!(
                "`{name}` may {what} to `{grant}`, which its own subscription `{subject}` takes: what it \
                 sends there comes back to it"
            ));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(subscribe: &[&str], publish: &[&str]) -> ComponentConfig {
        let text = format!(
            "[[components]]\nname = \"c\"\nwasm = \"x.wasm\"\nsubscribe = {subscribe:?}\npublish = {publish:?}\n"
        );
        let manifest = crate::manifest::Manifest::parse(&text).expect("manifest");
        manifest.components[0].clone()
    }

    fn route(pattern: &str, request: bool) -> DeclaredRoute {
        DeclaredRoute {
            pattern: pattern.to_owned(),
            request,
        }
    }

    #[test]
    fn each_mistake_is_named() {
        let routes = [route("orders.get", true), route("audit.*", false)];
        let found = mistakes(&entry(&["orders.>", "stray.>"], &["orders.created"]), &routes);
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(found[0].contains("`stray.>` of `c` reaches none of its routes (request orders.get, event audit.*)"));
        assert!(found[1].contains("route `event audit.*` of `c` is fed by none"));
        assert!(found[2].contains("may publish to `orders.created`, which its own subscription `orders.>` takes"));
    }

    #[test]
    fn a_component_that_declares_nothing_is_judged_on_its_grants_only() {
        assert!(mistakes(&entry(&["a.>"], &["b.>"]), &[]).is_empty());
        assert_eq!(mistakes(&entry(&["a.>"], &["a.x"]), &[]).len(), 1);
    }
}
