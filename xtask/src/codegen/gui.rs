//! The GUI's copy of the platform facts it needs at build and development time
//! (`services/gui/src/platform.generated.ts`): the local gateway's URL, which `npm run dev`
//! proxies to by default, the public routes it proxies (the streaming one unbuffered), the
//! trace look-up prefix and the local Jaeger UI. Generated so that no port or prefix is
//! typed twice.

use std::fmt::Write as _;

use platform::{SERVICES, gateway, observability};

use super::HEADER_NOTE;

/// The text of `services/gui/src/platform.generated.ts`.
pub fn platform_ts() -> String {
    let mut routes = String::new();
    for service in SERVICES.iter().rev() {
        let Some(route) = service.route else { continue };
        let _ = writeln!(
            routes,
            "  {{ prefix: \"{}\", streaming: {} }}, // the {} service (:{}) behind the gateway",
            route.prefix, route.streaming, service.name, service.port
        );
    }
    let _ = writeln!(
        routes,
        "  {{ prefix: \"{}\", streaming: false }}, // Jaeger's query API (:{}), trace look-ups only",
        gateway::TRACES_PREFIX,
        observability::JAEGER_QUERY_PORT
    );
    format!(
        r#"// {HEADER_NOTE}
// The platform facts the GUI needs (libs/platform), for the page and for `npm run dev`.

/** The local gateway of `cargo xtask up`: `npm run dev` proxies to it unless API_GATEWAY says otherwise. */
export const LOCAL_GATEWAY_URL = "{gateway_url}";

/** Where the gateway serves the GUI. */
export const GUI_PREFIX = "{gui}";

/** The read-only trace look-ups on Jaeger's query API. */
export const TRACES_PREFIX = "{traces}";

/** The gateway's public routes besides the GUI; a streaming route must not be buffered. */
export const ROUTES: readonly {{ prefix: string; streaming: boolean }}[] = [
{routes}];
"#,
        gateway_url = gateway::LOCAL_URL,
        gui = gateway::GUI_PREFIX,
        traces = gateway::TRACES_PREFIX,
    )
}
