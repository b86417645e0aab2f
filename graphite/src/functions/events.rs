//! `events(*tags)`: graphite-web's events (`/events`, [`crate::store::events`]) as a series —
//! at one-second steps over the request window, the number of events in each second, None
//! where there is none (graphite-web draws it with `drawAsInfinite`).
//!
//! The function asks for its events as a fetch of its own (a request whose pattern is
//! [`pattern`], never a path), so they are read with the render's other data, under its
//! budget: [`fetch`] answers those requests through [`Source::events`] and hands the rest to
//! [`crate::tags::fetch`].

use super::{req, Function, ParamType as T};
use crate::budget::Budget;
use crate::eval::{span_points, Cx, EvalError, FetchRequest, Source};
use crate::series::{Consolidation, Series};

/// graphite-web's step for events: one second.
const STEP: i64 = 1;

/// What an events request's pattern starts with (a call, so never a stored path).
const PREFIX: &str = "events(";

pub const EVENTS: Function = Function::new(
    "events",
    "Special",
    &[req("tags", T::String).multiple()],
    |cx, a| {
        let tags: Vec<String> = a.all("tags").iter().map(|v| v.py_str()).collect();
        events(cx, &tags)
    },
);

fn events(cx: &mut Cx<'_, '_>, tags: &[String]) -> Result<Vec<Series>, EvalError> {
    // graphite-web aligns the window to its one-second step: whole seconds already.
    let (from, until) = (cx.from, cx.until);
    let mut out = cx.read(&pattern(tags), from, until)?;
    for s in &mut out {
        s.x_files_factor = cx.ctx.x_files_factor.unwrap_or(0.0);
    }
    Ok(out)
}

/// The series' name, graphite-web's `events("a", "b")` (whatever quotes the target used).
pub fn name(tags: &[String]) -> String {
    format!("events(\"{}\")", tags.join("\", \""))
}

/// The fetch pattern of an `events(tags)` call: its tags as a JSON list, so any tag text
/// comes back intact.
fn pattern(tags: &[String]) -> String {
    format!(
        "{PREFIX}{})",
        serde_json::to_string(tags).unwrap_or_default()
    )
}

/// The tags of an events request's pattern; `None` for any other pattern.
fn tags_of(pattern: &str) -> Option<Vec<String>> {
    let list = pattern.strip_prefix(PREFIX)?.strip_suffix(')')?;
    serde_json::from_str(list).ok()
}

/// The events series over `[from, until)`: a point per second, the count of events that
/// second or None. graphite-web reads events with `from <= when <= until` and places each
/// at `(int(when) - from) // step`; one at `until` itself has no point (graphite-web fails
/// with an IndexError there), so it is left out.
fn series(
    source: &dyn Source,
    r: &FetchRequest,
    tags: &[String],
    budget: &Budget,
) -> Result<Series, EvalError> {
    let name = name(tags);
    let points = span_points(r.from, r.until, STEP);
    budget.fits(points, &name)?;
    // `*` alone is every event.
    let want = (tags != ["*"]).then_some(tags);
    let limit = usize::try_from(points).unwrap_or(usize::MAX);
    let times = source.events(r.from, r.until, want, limit)?;
    let mut values: Vec<Option<f64>> = vec![None; points as usize];
    for when in times {
        let at = (when.floor() as i64 - r.from).div_euclid(STEP);
        if let Some(v) = usize::try_from(at).ok().and_then(|i| values.get_mut(i)) {
            *v = Some(v.unwrap_or(0.0) + 1.0);
        }
    }
    let mut s = Series::new(name.clone(), r.from, r.until, STEP, values);
    s.path_expression = name;
    s.consolidation = Consolidation::Sum;
    Ok(s)
}

/// [`crate::tags::fetch`], answering `events()` requests from [`Source::events`].
pub fn fetch(
    source: &dyn Source,
    reqs: &[FetchRequest],
    budget: &Budget,
) -> Result<Vec<Vec<Series>>, EvalError> {
    if !reqs.iter().any(|r| r.pattern.starts_with(PREFIX)) {
        return crate::tags::fetch(source, reqs);
    }
    let mut out: Vec<Vec<Series>> = vec![Vec::new(); reqs.len()];
    let mut rest = Vec::new();
    let mut rest_at = Vec::new();
    for (i, r) in reqs.iter().enumerate() {
        match tags_of(&r.pattern) {
            Some(tags) => out[i] = vec![series(source, r, &tags, budget)?],
            None => {
                rest.push(r.clone());
                rest_at.push(i);
            }
        }
    }
    if !rest.is_empty() {
        for (i, s) in rest_at.into_iter().zip(crate::tags::fetch(source, &rest)?) {
            out[i] = s;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::eval::{render, MemorySource};

    fn source() -> MemorySource {
        MemorySource::new(vec![ser_step("x", 10, &[Some(1.0); 20])]).with_events(vec![
            (99.0, "deploy web".into()),
            (100.0, "deploy web".into()),
            (103.7, "deploy db".into()),
            (103.2, "alert".into()),
            (109.0, "deploy web".into()),
            (110.0, "deploy web".into()),
        ])
    }

    #[test]
    fn counts_events_per_second_over_the_window() {
        let out = render(&[t("events('deploy')")], 100, 110, 200, &source()).unwrap();
        assert_eq!(out.len(), 1);
        let s = &out[0];
        assert_eq!(s.name, "events(\"deploy\")");
        assert_eq!(s.path_expression, s.name);
        check_times(s, 100, 110, 1);
        let mut want = vec![None; 10];
        want[0] = Some(1.0);
        want[3] = Some(1.0);
        want[9] = Some(1.0);
        assert_eq!(s.values, want);
    }

    #[test]
    fn tags_are_anded_and_star_is_every_event() {
        let src = source();
        let out = render(&[t("events(\"deploy\", 'web')")], 100, 110, 200, &src).unwrap();
        assert_eq!(out[0].name, "events(\"deploy\", \"web\")");
        assert_eq!(out[0].values.iter().flatten().sum::<f64>(), 2.0);
        let out = render(&[t("events('*')")], 100, 110, 200, &src).unwrap();
        assert_eq!(out[0].values[3], Some(2.0));
        assert_eq!(out[0].values.iter().flatten().sum::<f64>(), 4.0);
        let out = render(&[t("events('nosuch')")], 100, 110, 200, &src).unwrap();
        assert!(out[0].values.iter().all(Option::is_none));
    }

    #[test]
    fn composes_with_other_functions_and_windows() {
        let src = source();
        let out = render(
            &[t("drawAsInfinite(timeShift(events('alert'), '+5s'))")],
            95,
            105,
            200,
            &src,
        )
        .unwrap();
        check_times(&out[0], 95, 105, 1);
        // The alert at 103.2 is read over the shifted window 100..110 and drawn at 98.
        assert_eq!(out[0].values[3], Some(1.0));
        assert!(out[0].draw.draw_as_infinite);
    }

    #[test]
    fn a_source_without_events_refuses_and_the_budget_holds() {
        struct NoEvents;
        impl crate::eval::Source for NoEvents {
            fn fetch(
                &self,
                reqs: &[crate::eval::FetchRequest],
            ) -> Result<Vec<Vec<crate::series::Series>>, crate::eval::EvalError> {
                Ok(vec![Vec::new(); reqs.len()])
            }
        }
        let e = render(&[t("events('x')")], 100, 110, 200, &NoEvents).unwrap_err();
        assert!(e.to_string().contains("no events"), "{e}");
        let budget = crate::budget::Budget::new().with_max_points(100);
        let e =
            crate::eval::render_with(&[t("events('x')")], 0, 86_400, 90_000, &source(), &budget)
                .unwrap_err();
        assert!(e.is_budget(), "{e}");
    }
}
