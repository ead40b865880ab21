//! An interactive map as one self-contained HTML file: no network, no external script.
//!
//! The page draws every face on a canvas, pans with drag, zooms with the wheel (or +/−), and on
//! hover shows the face thumbnail, identity and source path. Opening it with `#selftest`
//! appended runs a self-check (every point drawn; hovering a face shows its thumbnail) and
//! writes the result as JSON into `<pre id="selftest">`, which the tests read back through
//! headless Chromium.

use crate::map::{FaceMap, MapOptions};
use crate::picture::color_of;
use base64::Engine;
use serde_json::json;

const TEMPLATE: &str = include_str!("map.html");

/// Builds the page.
pub fn html_string(map: &FaceMap, opts: &MapOptions) -> String {
    let ranks = map.identity_ranks(opts.legend_max);
    let mut identities: Vec<String> = Vec::new();
    let mut index = std::collections::HashMap::new();
    let mut thumbs: Vec<String> = Vec::new();
    let mut thumb_of = |png: &Option<Vec<u8>>| -> i64 {
        match png {
            Some(b) => {
                thumbs.push(format!(
                    "data:image/png;base64,{}",
                    base64::engine::general_purpose::STANDARD.encode(b)
                ));
                thumbs.len() as i64 - 1
            }
            None => -1,
        }
    };
    let mut points = Vec::with_capacity(map.points.len());
    for p in &map.points {
        let id = *index.entry(p.identity.clone()).or_insert_with(|| {
            identities.push(p.identity.clone());
            identities.len() - 1
        });
        points.push(json!([
            p.xy[0],
            p.xy[1],
            id,
            p.source,
            thumb_of(&p.thumbnail)
        ]));
    }
    let ids: Vec<serde_json::Value> = identities
        .iter()
        .map(|name| {
            let (r, g, b) = color_of(ranks.get(name).copied());
            json!({"name": name, "color": format!("rgb({r},{g},{b})"), "ranked": ranks.contains_key(name)})
        })
        .collect();
    let queries: Vec<serde_json::Value> = map
        .queries
        .iter()
        .map(|q| {
            let near: Vec<serde_json::Value> = q
                .nearest
                .iter()
                .filter_map(|n| map.identity_centre(&n.identity).map(|c| json!({"identity": n.identity, "distance": n.distance, "x": c[0], "y": c[1]})))
                .collect();
            json!({"label": q.label, "x": q.xy[0], "y": q.xy[1], "thumb": thumb_of(&q.thumbnail), "nearest": near})
        })
        .collect();
    let data = json!({
        "title": opts.title,
        "note": map.method_note,
        "points": points,
        "identities": ids,
        "queries": queries,
        "thumbs": thumbs,
    });
    // `</` cannot appear inside the inline script.
    let data = data.to_string().replace("</", "<\\/");
    TEMPLATE
        .replace(
            "__TITLE__",
            &html_escape(if opts.title.is_empty() {
                "facelike map"
            } else {
                &opts.title
            }),
        )
        .replace("__DATA__", &data)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
