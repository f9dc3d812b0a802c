"""Model calls: one call of an agent's model, with retries and then its fallbacks."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from playground.engine import events as ev
from playground.engine.budgets import check_budget
from playground.engine.outcomes import CallFailed
from playground.engine.plans import tool_schemas
from playground.errors import ModelError, ModelTimeout, ProviderError, ScriptError
from playground.llm.base import LLM, ModelRequest, ModelResponse, ToolDef
from playground.spec.models import AgentSpec

if TYPE_CHECKING:
    from playground.engine.branch import Branch
    from playground.engine.plans import Plan
    from playground.engine.runtime import Runtime


def default_llm_factory(agent: AgentSpec, model: str) -> LLM:
    """``scripted`` (or ``scripted/<label>``) answers from the agent's script; anything else
    goes to litellm, imported only now."""
    if model == "scripted" or model.startswith("scripted/"):
        from playground.llm.scripted import ScriptedLLM

        return ScriptedLLM(agent.name, agent.script, agent.latency_ms or 0.0, agent.tokens_per_s or 0.0)
    from playground.llm.litellm_model import LiteLLM

    return LiteLLM()


def llm_for(run: Runtime, agent: AgentSpec, model: str, plan: Plan) -> LLM:
    if run.llm_factory is default_llm_factory:
        # The default models keep no per-run state that could leak between sessions (the
        # scripted model's is keyed by session), so one per spec and model serves every run.
        llm = plan.llms.get(model)
        if llm is None:
            llm = plan.llms[model] = default_llm_factory(agent, model)
        return llm
    key = (agent.name, model)
    llm = run.llms.get(key)
    if llm is None:
        llm = run.llms[key] = run.llm_factory(agent, model)
    return llm


async def call_model(
    run: Runtime,
    branch: Branch,
    name: str,
    agent: AgentSpec,
    messages: list[dict[str, Any]],
    tools: list[ToolDef],
    act: int,
    cause: int,
    step: int,
    plan: Plan,
    *,
    retry_of: int | None = None,
    own_tools: bool = True,
) -> tuple[ModelResponse, ev.ModelResponded]:
    """Call the agent's model (its fallbacks if it keeps failing) as ``step``; each further
    attempt is a step of its own. ``own_tools``: ``tools`` are the plan's."""
    limits = run.spec.limits
    tool_names = list(plan.tool_names) if own_tools else [t.name for t in tools]
    schemas = plan.tool_schemas if own_tools else tool_schemas(tools)
    models = plan.models
    last_error: ModelError | None = None
    last_failed: ev.ModelFailed | ev.FallbackUsed | ev.RetryScheduled | None = None
    activation = f"{run.session_id}:{act}"
    version = run.versions.get(name, "")
    watchdog = branch.watchdog
    perf = run.clock.perf
    emit = run.emit
    if run.budgeted:
        await check_budget(run, name, agent, messages, act, cause, step)
    for index, model in enumerate(models):
        if index:
            last_failed = emit(
                ev.FallbackUsed,
                agent=name,
                activation=act,
                cause=last_failed.seq if last_failed else cause,
                from_model=models[index - 1],
                to_model=model,
            )
        llm = plan.llms.get(model) if run.llm_factory is default_llm_factory else None
        if llm is None:
            llm = llm_for(run, agent, model, plan)
        settings = plan.settings[model]
        for attempt in range(1, limits.retries + 2):
            if index or attempt > 1:
                step = run.next_step()
            requested = emit(
                ev.ModelRequested,
                agent=name,
                step=step,
                activation=act,
                cause=last_failed.seq if last_failed else cause,
                model=model,
                messages=list(messages),
                tools=tool_names,
                attempt=attempt,
                tool_schemas=schemas,
                settings=settings,
            )
            request = ModelRequest(
                name, model, messages, tools, settings, limits.call_timeout_s, activation, version
            )
            t0 = perf()
            call = llm.complete(request, run.delta_sink(name, act, step) if run.live else None)
            try:
                # The watchdog, inline: one coroutine less per call than wrapping ``call``.
                watchdog.arm(limits.call_timeout_s)
                try:
                    response = await call
                except asyncio.CancelledError:
                    if watchdog.timed_out():
                        raise TimeoutError from None
                    raise
                finally:
                    watchdog.disarm()
            except TimeoutError:
                error: ModelError = ModelTimeout(
                    f"{model} did not answer within limits.call_timeout_s = {limits.call_timeout_s} s",
                    model=model,
                )
            except ModelError as exc:
                error = exc
            except Exception as exc:
                error = ProviderError(f"{type(exc).__name__}: {exc}", model=model)
            else:
                latency = (perf() - t0) * 1000
                price = agent.price
                cost = (
                    (response.input_tokens * price.input + response.output_tokens * price.output) / 1e6
                    if price is not None
                    else response.cost_usd or 0.0
                )
                totals = run.totals_of(name)
                totals.calls += 1
                totals.input_tokens += response.input_tokens
                totals.output_tokens += response.output_tokens
                totals.cost_usd += cost
                totals.latency_ms += latency
                calls = response.tool_calls
                responded: ev.ModelResponded = emit(
                    ev.ModelResponded,
                    agent=name,
                    step=step,
                    activation=act,
                    cause=requested.seq,
                    model=response.model or model,
                    text=response.text,
                    tool_calls=[{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls],
                    input_tokens=response.input_tokens,
                    output_tokens=response.output_tokens,
                    cost_usd=cost,
                    latency_ms=latency,
                    first_token_ms=response.first_token_ms,
                    retry_of=retry_of,
                    replayed=response.replayed,
                )
                return response, responded
            latency = (perf() - t0) * 1000
            run.totals_of(name).latency_ms += latency
            last_error = error
            last_failed = emit(
                ev.ModelFailed,
                agent=name,
                step=step,
                activation=act,
                cause=requested.seq,
                model=model,
                error_type=error.error_type,
                message=str(error),
                attempt=attempt,
                retryable=error.retryable,
                latency_ms=latency,
            )
            if isinstance(error, ScriptError):
                raise CallFailed("script_error", f"error of the script: {error}", name, name, last_failed.seq)
            if not error.retryable or attempt > limits.retries:
                break
            delay = limits.backoff_s * (2 ** (attempt - 1))
            last_failed = emit(
                ev.RetryScheduled,
                agent=name,
                activation=act,
                cause=last_failed.seq,
                model=model,
                attempt=attempt + 1,
                delay_s=delay,
            )
            if delay:
                await asyncio.sleep(delay)
    assert last_error is not None
    tried = ", ".join(models)
    raise CallFailed(
        last_error.error_type,
        f"{name!r}: every model failed ({tried}); last: {last_error}",
        name,
        name,
        last_failed.seq if last_failed else None,
    )
