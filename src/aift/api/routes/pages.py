"""Server-rendered pages of the web UI (data comes from the JSON API in the browser)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from aift import __version__
from aift.api.deps import get_runtime
from aift.errors import AiftError
from aift.evaluation.harness import workspace_tasks
from aift.inference.engines import engines
from aift.inference.manager import SERVABLE_KINDS
from aift.jobs.kinds import all_kinds
from aift.models.schemas import ModelFormat, ModelKind, Purpose
from aift.monitoring.units import human_size
from aift.training.schemas import DatasetFormat, TrainingConfig
from aift.web.dashboard import dashboard
from aift.web.forms import form_fields
from aift.work.actor import current_actor

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parents[2] / "web" / "templates"))
STATIC = Path(__file__).parents[2] / "web" / "static"
TEMPLATES.env.filters["size"] = lambda num: human_size(num or 0)

router = APIRouter(include_in_schema=False)


def render(request: Request, name: str, **context: object) -> HTMLResponse:
    """A page; a signed-in browser's pages carry its CSRF token for their scripts."""
    session = getattr(request.state, "browser_session", None)
    principal = getattr(request.state, "principal", None)
    extra = {
        "version": __version__,
        "csrf_token": session.csrf_token if session is not None else "",
        "signed_in": session is not None,
        "principal": principal,
    }
    return TEMPLATES.TemplateResponse(request, name, {**extra, **context})


def _error_page(request: Request, exc: AiftError, *, page: str, back: str) -> HTMLResponse:
    """A user error on a page (e.g. an unknown id in the URL), as a page with a way back."""
    title = "Not found" if exc.status_code == 404 else "Something is wrong"
    response = render(request, "error.html", page=page, title=title, message=exc.message, back=back)
    response.status_code = exc.status_code
    return response


@router.get("/", response_class=HTMLResponse)
async def dashboard_page(request: Request) -> HTMLResponse:
    board = await run_in_threadpool(dashboard, get_runtime(request))
    return render(request, "dashboard.html", page="dashboard", board=board)


@router.get("/partials/dashboard", response_class=HTMLResponse)
async def dashboard_partial(request: Request) -> HTMLResponse:
    """The dashboard's body alone, which the page swaps in every few seconds (htmx)."""
    board = await run_in_threadpool(dashboard, get_runtime(request))
    return render(request, "partials/dashboard.html", board=board)


@router.get("/chat", response_class=HTMLResponse)
async def chat_page(request: Request) -> HTMLResponse:
    runtime = get_runtime(request)
    servable = await run_in_threadpool(runtime.model_manager.servable)
    names = [m.name for m in servable]
    wanted = request.query_params.get("model")
    if wanted in names:  # "chat with this model" from a run or the models page
        chosen = wanted
    else:
        default = await run_in_threadpool(runtime.models.resolver.resolve_default, Purpose.llm)
        chosen = default.name
    return render(
        request,
        "chat.html",
        page="chat",
        models=names,
        default_model=chosen,
        kbs=await run_in_threadpool(runtime.knowledge.list),
    )


@router.get("/kb", response_class=HTMLResponse)
async def knowledge_page(request: Request) -> HTMLResponse:
    runtime = get_runtime(request)
    kbs = await run_in_threadpool(runtime.knowledge.list)
    models = await run_in_threadpool(runtime.serving.embedding_models)
    return render(
        request,
        "knowledge.html",
        page="kb",
        kbs=kbs,
        owners=await run_in_threadpool(_owners, request),
        embedding_models=[m.name for m in models],
        default_embedding=runtime.settings.default_embedding_model,
    )


@router.get("/kb/{kb}", response_class=HTMLResponse)
async def knowledge_base_page(request: Request, kb: str) -> HTMLResponse:
    try:
        context = await _documents(request, kb)
    except AiftError as exc:  # an unknown knowledge base: say so in a page, not JSON
        return _error_page(request, exc, page="kb", back="/kb")
    sharing = await _ownership(request, [context["kb"]], "id")
    return render(request, "knowledge_base.html", page="kb", **context, **sharing)


@router.get("/partials/kb/{kb}/documents", response_class=HTMLResponse)
async def documents_partial(request: Request, kb: str) -> HTMLResponse:
    """The documents table alone; it polls itself while any document is in progress."""
    return render(request, "partials/documents.html", **await _documents(request, kb))


async def _documents(request: Request, kb: str) -> dict[str, object]:
    runtime = get_runtime(request)
    info = await run_in_threadpool(runtime.knowledge.get, kb)
    documents = await run_in_threadpool(runtime.knowledge.documents, info.id)
    finished = {"indexed", "failed", "needs_password"}
    return {
        "kb": info,
        "documents": documents,
        "busy": any(d.status.value not in finished for d in documents),
    }


def _owners(request: Request) -> dict[str, str]:
    """User id → email, for the owner columns of lists (empty without accounts)."""
    accounts = get_runtime(request).accounts
    return {u.id: u.email for u in accounts.users.users()} if accounts.exist() else {}


async def _ownership(request: Request, items: Sequence[Any], key: str) -> dict[str, object]:
    """The owner emails of a list's rows and which rows (by `key`) the viewer may share:
    their own, or any owned one for an admin; nothing without accounts."""
    owners = await run_in_threadpool(_owners, request)
    actor = current_actor.get()
    shareable = {
        getattr(item, key)
        for item in items
        if owners and item.owner_id is not None and (actor.admin or item.owner_id == actor.user_id)
    }
    return {"owners": owners, "shareable": shareable}


@router.get("/datasets", response_class=HTMLResponse)
async def datasets_page(request: Request) -> HTMLResponse:
    runtime = get_runtime(request)
    datasets = await run_in_threadpool(runtime.datasets.list)
    servable = await run_in_threadpool(runtime.model_manager.servable)
    default = await run_in_threadpool(runtime.models.resolver.resolve_default, Purpose.llm)
    return render(
        request,
        "datasets.html",
        page="datasets",
        datasets=datasets,
        formats=list(DatasetFormat),
        kbs=await run_in_threadpool(runtime.knowledge.list),
        models=[m.name for m in servable],
        default_model=default.name,
        **await _ownership(request, datasets, "id"),
    )


@router.get("/partials/datasets", response_class=HTMLResponse)
async def datasets_partial(request: Request) -> HTMLResponse:
    """The datasets table alone, re-rendered after an upload or a delete."""
    datasets = await run_in_threadpool(get_runtime(request).datasets.list)
    return render(
        request,
        "partials/datasets.html",
        datasets=datasets,
        **await _ownership(request, datasets, "id"),
    )


@router.get("/datasets/{dataset_id}", response_class=HTMLResponse)
async def dataset_page(request: Request, dataset_id: str) -> HTMLResponse:
    service = get_runtime(request).datasets
    try:
        info = await run_in_threadpool(service.get, dataset_id)
        preview = await run_in_threadpool(service.preview, dataset_id)
    except AiftError as exc:
        return _error_page(request, exc, page="datasets", back="/datasets")
    return render(
        request,
        "dataset.html",
        page="datasets",
        dataset=info,
        preview=preview,
        **await _ownership(request, [info], "id"),
    )


@router.get("/models", response_class=HTMLResponse)
async def models_page(request: Request) -> HTMLResponse:
    from aift.export.schemas import QUANT_NAMES
    from aift.export.sources import EXPORTABLE_KINDS

    context = await _models(request)
    exportable = [
        m.name
        for m in context["models"]  # type: ignore[attr-defined]
        if m.kind in EXPORTABLE_KINDS and m.format != ModelFormat.ollama
    ]
    return render(
        request,
        "models.html",
        page="models",
        exportable=exportable,
        quants=QUANT_NAMES,
        **context,
    )


@router.get("/partials/models", response_class=HTMLResponse)
async def models_partial(request: Request) -> HTMLResponse:
    """The models page's tables alone, re-rendered after a load, unload or pull."""
    return render(request, "partials/models.html", **await _models(request))


async def _models(request: Request) -> dict[str, object]:
    runtime = get_runtime(request)
    registry = await run_in_threadpool(runtime.models.list)
    remote = await run_in_threadpool(runtime.model_manager.servable)
    names = {m.name for m in registry}
    return {
        **await _ownership(request, registry, "name"),
        "models": registry + [m for m in remote if m.name not in names],
        "loaded": await run_in_threadpool(runtime.model_manager.loaded),
        "engines": [name for name, spec in engines().items() if spec.available()],
        "servable": {kind.value for kind in SERVABLE_KINDS},
    }


# Run-config fields folded under "Advanced" on the training form.
ADVANCED_TRAINING = frozenset(
    {
        "seed",
        "logging_steps",
        "save_total_limit",
        "precision",
        "gradient_checkpointing",
        "weight_decay",
        "lr_scheduler",
        "warmup_ratio",
        "packing",
        "loss_on",
        "lora.dropout",
        "lora.target_modules",
        "save_steps",
        "evaluation.dataset",
        "evaluation.exact_match",
        "evaluation.examples",
    }
)
# Run-config sections that switch a mode on when present (set from YAML, API or CLI);
# the before/after evaluation is on the form behind its own switch (`evaluate`).
NOT_ON_TRAINING_FORM = frozenset({"continual", "distributed"})
EVALUATE_SWITCH = {"evaluate": ["on"]}
EVALUATION_LABELS = {
    "evaluation.dataset": "Evaluation set",
    "evaluation.exact_match": "Also score greedy answers (exact match)",
    "evaluation.examples": "Validation rows scored",
}
TRAINABLE_KINDS = {ModelKind.base, ModelKind.finetuned, ModelKind.gguf}


@router.get("/training", response_class=HTMLResponse)
async def training_page(request: Request) -> HTMLResponse:
    runtime = get_runtime(request)
    models = await run_in_threadpool(runtime.models.list)
    datasets = await run_in_threadpool(runtime.datasets.list)
    bases = [m.name for m in models if m.kind in TRAINABLE_KINDS]
    fields = form_fields(
        TrainingConfig,
        choices={
            "base_model": [(name, name) for name in bases],
            "dataset": [(d.id, f"{d.name} ({d.rows_train} rows)") for d in datasets],
            "evaluation.dataset": [("", "the run's own")]
            + [(d.id, f"{d.name} ({d.rows_val} validation rows)") for d in datasets],
        },
        advanced=ADVANCED_TRAINING,
        exclude=NOT_ON_TRAINING_FORM,
    )
    for form_field in fields:
        if form_field.name.startswith("evaluation."):
            form_field.applies_when = EVALUATE_SWITCH
            form_field.label = EVALUATION_LABELS[form_field.name]
    wanted = {"dataset": request.query_params.get("dataset")}
    for form_field in fields:
        if wanted.get(form_field.name):
            form_field.value = wanted[form_field.name]
    return render(
        request,
        "training.html",
        page="training",
        fields=fields,
        runs=await _runs(request),
        ready=bool(bases and datasets),
    )


@router.get("/partials/training/runs", response_class=HTMLResponse)
async def runs_partial(request: Request) -> HTMLResponse:
    """The runs table alone; it refreshes itself while a run is active."""
    return render(request, "partials/runs.html", runs=await _runs(request))


async def _runs(request: Request) -> list:
    jobs = get_runtime(request).jobs
    page = await run_in_threadpool(jobs.list, kind="training.run", limit=50)
    return page.items


@router.get("/training/{job_id}", response_class=HTMLResponse)
async def training_run_page(request: Request, job_id: str) -> HTMLResponse:
    runtime = get_runtime(request)
    try:
        job = await run_in_threadpool(runtime.jobs.get, job_id)
        if job.kind != "training.run":
            await run_in_threadpool(runtime.training.curve, job_id)  # says what is wrong
    except AiftError as exc:
        return _error_page(request, exc, page="training", back="/training")
    model = None
    if job.result and job.result.get("model"):
        try:
            model = await run_in_threadpool(runtime.models.get, job.result["model"])
        except AiftError:  # the output was deleted since; the page still shows the run
            model = None
    return render(request, "training_run.html", page="training", job=job, model=model)


@router.get("/evaluations", response_class=HTMLResponse)
async def evaluations_page(request: Request) -> HTMLResponse:
    runtime = get_runtime(request)
    models = await run_in_threadpool(runtime.serving.manager.servable)
    datasets = await run_in_threadpool(runtime.datasets.list)
    kbs = await run_in_threadpool(runtime.knowledge.list)
    return render(
        request,
        "evaluations.html",
        page="evaluations",
        models=[m.name for m in models],
        datasets=[d for d in datasets if d.format != DatasetFormat.text],
        kbs=kbs,
        eval_tasks=await run_in_threadpool(workspace_tasks, runtime.workspace.eval_tasks),
    )


@router.get("/arena", response_class=HTMLResponse)
async def arena_page(request: Request) -> HTMLResponse:
    models = await run_in_threadpool(get_runtime(request).serving.manager.servable)
    return render(request, "arena.html", page="arena", models=[m.name for m in models])


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(request: Request) -> HTMLResponse:
    return render(request, "jobs.html", page="jobs", kinds=sorted(k.name for k in all_kinds()))


@router.get("/history", response_class=HTMLResponse)
async def history_page(request: Request) -> HTMLResponse:
    kbs = await run_in_threadpool(get_runtime(request).knowledge.list)
    return render(request, "history.html", page="history", kbs=kbs)


@router.get("/favicon.ico", response_class=FileResponse)
def favicon() -> FileResponse:
    """The icon browsers ask for by this name (our pages link the SVG itself)."""
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")
