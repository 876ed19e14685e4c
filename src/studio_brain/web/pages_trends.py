"""The cockpit's Trends page (issue 14): 30, 90 or 365 days of daily closes per metric, anomalies marked.

A day's point is its close (the close's run, or the day's snapshot where no close was recorded); a day
recorded as not closed is a gap, never filled. Anomalies come from the ops swarm's detector
(``domain.anomaly.scan``) over the same series.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from studio_brain.domain.anomaly import DetectorConfig, Observation, scan
from studio_brain.web import pages_view as view
from studio_brain.web.charts import line_chart
from studio_brain.web.pages_common import StaffPage, brain_of, render

router = APIRouter(include_in_schema=False)

RANGES = (30, 90, 365)


@router.get("/trends", response_class=HTMLResponse)
async def trends_page(request: Request, page: StaffPage) -> Response:
    brain = brain_of(request)
    raw = request.query_params.get("days", "30")
    days = int(raw) if raw.isdigit() and int(raw) in RANGES else 30
    wanted = request.query_params.get("metric", "")
    store = brain.state_store
    latest = await store.latest_snapshot(page.tenant)
    end = (
        latest.snapshot_date
        if latest is not None
        else brain.clock.now().astimezone(brain.settings.zone).date()
    )
    start = end - timedelta(days=days - 1)
    runs = {run.snapshot_date: run for run in await store.history(page.tenant, start, end)}
    closes = await store.closes(page.tenant, start, end)
    not_closed = {c.close_date for c in closes if not c.closed}
    for close in closes:
        if close.run_id is not None and (run := await store.get_run(page.tenant, close.run_id)) is not None:
            runs[close.close_date] = run
    values_by_day = {d: view.metric_values(r.document) for d, r in runs.items() if d not in not_closed}
    keys: list[str] = []
    for d in sorted(values_by_day):
        keys.extend(k for k in values_by_day[d] if k not in keys)
    calendar = [start + timedelta(days=n) for n in range(days)]
    charts = []
    for key in keys:
        if wanted and key != wanted:
            continue
        series = [(d, values_by_day.get(d, {}).get(key)) for d in calendar]
        observations = [Observation(day=d, value=v, ref=runs[d].id) for d, v in series if v is not None]
        found = scan(key, observations, DetectorConfig()).findings
        label = view.metric_label(key)
        charts.append(
            {
                "key": key,
                "label": label,
                "chart": line_chart(series, label=label, anomalies=set(found)),
                "anomalies": sorted(found.values(), key=lambda a: a.day, reverse=True)[:5],
            }
        )
    return render(
        request,
        "trends.html",
        page=page,
        title="Trends",
        nav="trends",
        days=days,
        ranges=RANGES,
        charts=charts,
        metric=wanted,
        metric_options=[(k, view.metric_label(k)) for k in keys],
        start=start,
        end=end,
        not_closed=[d.isoformat() for d in sorted(not_closed)],
    )
