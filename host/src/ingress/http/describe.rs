//! The routes as a person reads them in the log: where to send a request
//! and who answers it. Printed when the listener starts and when `berth
//! dev` applies a changed manifest, so that the first `curl` needs no
//! looking up.

use crate::manifest::{GuardConfig, HttpRoute};

/// One line per route, `base` (`http://127.0.0.1:8080`) before its path:
/// `POST http://127.0.0.1:8080/hello → hello.hello`, then the middleware
/// and guard in front, if any.
pub fn describe(routes: &[HttpRoute], base: &str) -> Vec<String> {
    routes
        .iter()
        .map(|r| {
            let methods = match r.methods.is_empty() {
                true => "ANY".to_owned(),
                false => r.methods.join(","),
            };
            let target = match (&r.subject, &r.component) {
                (Some(subject), _) => subject.clone(),
                (None, Some(component)) => format!("component {component} (wasi:http)"),
                // Validation refuses a route with neither.
                (None, None) => "nothing".to_owned(),
            };
            let mut line = format!("{methods} {base}{} → {target}", r.path);
            if !r.middleware.is_empty() {
                line.push_str(&format!(", after {}", r.middleware.join(", ")));
            }
            match r.guard {
                GuardConfig::None => {}
                GuardConfig::Session => line.push_str(", signed-in callers only"),
                GuardConfig::Admin => line.push_str(", admins only"),
            }
            line
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;

    #[test]
    fn each_route_reads_as_where_to_send_and_who_answers() {
        let manifest = Manifest::parse(
            r#"
            [[http.routes]]
            path = "/hello"
            methods = ["POST"]
            subject = "hello.hello"

            [[http.routes]]
            path = "/orders/{id}"
            methods = ["GET", "DELETE"]
            subject = "orders.get"
            middleware = ["auth", "audit"]
            guard = "admin"

            [[http.routes]]
            path = "/site/{*rest}"
            component = "site"
            "#,
        )
        .expect("manifest");
        assert_eq!(
            describe(&manifest.http.routes, "http://127.0.0.1:8080"),
            [
                "POST http://127.0.0.1:8080/hello → hello.hello",
                "GET,DELETE http://127.0.0.1:8080/orders/{id} → orders.get, after auth, audit, admins only",
                "ANY http://127.0.0.1:8080/site/{*rest} → component site (wasi:http)",
            ]
        );
    }
}
