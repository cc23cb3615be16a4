"""Demo sessions for ``agent-sessions demo``: a few realistic conversations, as export
records (``storage.transfer``'s format), so GraphiQL and the client have something to show.

Two users (``alice`` in finance, ``bob`` in support) talk to three agents: a finance
agent that answers from retrieved documents, a support agent that calls tools, and a
research agent that reasons. Every run has usage; retrieval runs have diagnostics and
eight chunks in retrieval order with their three scores, the best four by reranker
score included in the context. One run failed. The data is the same on every call
(seeded), placed in the fortnight before ``now``; ids are fixed, so seeding twice adds
nothing.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from agent_sessions.storage.transfer import FORMAT

_NAMESPACE = uuid.UUID("6f0f5a52-4a8e-4d6e-9a55-0d6b1c1e2a10")

# fmt: off
# Knowledge bases: (kb id, name, {source name: [passages]}).
FINANCE_KB = ("kb-finance", "Finance docs", {
    "Q1-2026-results.pdf": [
        "Q1 2026 revenue was $4.2M, up 18% year on year, driven by enterprise renewals.",
        "Gross margin in Q1 2026 was 71%, two points above plan, as hosting costs fell.",
        "Operating expenses in Q1 2026 were $3.1M; headcount grew from 42 to 47.",
    ],
    "Q4-2025-results.pdf": [
        "Q4 2025 revenue was $3.9M; December closed the year's largest enterprise deal.",
        "Net revenue retention for 2025 was 112%, with churn concentrated in small accounts.",
    ],
    "Refund-policy.md": [
        "Enterprise customers may request a full refund within 30 days of an invoice.",
        "After 30 days and up to 90 days, enterprise refunds are prorated to unused months.",
        "Self-serve plans are refunded only for billing errors, on request to support.",
    ],
    "Board-deck-2026-03.pdf": [
        "The 2026 plan targets $19M revenue and break-even by Q4 2026.",
        "The board approved a hiring freeze on non-engineering roles until Q3 2026.",
    ],
    "Travel-expenses.md": [
        "Travel over $1,500 needs a manager's approval before booking.",
        "Meals abroad are reimbursed up to the daily allowance of the destination city.",
    ],
})
SUPPORT_KB = ("kb-support", "Support handbook", {
    "Shipping-FAQ.md": [
        "Standard shipping takes 3-5 business days; express ships the next business day.",
        "Orders placed after 2 pm ship the following business day.",
    ],
    "Returns.md": [
        "Items can be returned within 60 days in their original packaging.",
        "Damaged items are replaced at no cost once a photo of the damage is received.",
    ],
    "Escalation.md": [
        "Tickets about payments go to the billing queue with priority high.",
        "A customer waiting more than 48 hours is escalated to a team lead.",
    ],
    "Warranty.md": [
        "Electronics carry a two-year warranty from the delivery date.",
        "Warranty claims need the order number and a description of the fault.",
    ],
    "Tone-guide.md": [
        "Apologise once, then say what happens next and when.",
        "Never promise a delivery date the carrier has not confirmed.",
    ],
})


# fmt: on


@dataclass
class Turn:
    question: str
    answer: str
    sources: tuple[str, ...] = ()  # the source documents that hold the answer
    tool: tuple[str, dict[str, Any], dict[str, Any]] | None = None  # name, arguments, result
    failed: str | None = None  # the error of a run that failed


@dataclass
class Script:
    id: str
    user: str
    agent: str
    title: str
    turns: list[Turn]
    kb: tuple[str, str, dict[str, list[str]]] | None = None
    effort: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


# fmt: off
SCRIPTS = [
    Script("demo-q1-revenue", "alice", "finance_agent", "Q1 revenue and margin", [
        Turn("What was our Q1 revenue?",
             "Q1 2026 revenue was $4.2M, up 18% year on year [Q1-2026-results.pdf].",
             ("Q1-2026-results.pdf",)),
        Turn("How does that compare to Q4 last year?",
             "Q4 2025 revenue was $3.9M, so Q1 grew about 8% quarter on quarter.",
             ("Q4-2025-results.pdf", "Q1-2026-results.pdf")),
        Turn("And the gross margin?",
             "Gross margin was 71% in Q1, two points above plan, as hosting costs fell.",
             ("Q1-2026-results.pdf",)),
    ], FINANCE_KB, "medium", {"channel": "web", "team": "finance"}),
    Script("demo-refunds", "alice", "finance_agent", "Enterprise refund policy", [
        Turn("What is our refund policy for enterprise customers?",
             "Enterprise customers get a full refund within 30 days of the invoice; from 30 "
             "to 90 days the refund is prorated to unused months.", ("Refund-policy.md",)),
        Turn("Does that apply to self-serve plans too?",
             "No: self-serve plans are refunded only for billing errors.",
             ("Refund-policy.md",)),
    ], FINANCE_KB, None, {"channel": "slack", "team": "finance"}),
    Script("demo-plan-2026", "alice", "research_agent", "Can we break even in 2026?", [
        Turn("Given Q1, are we on track to break even by Q4 2026?",
             "Roughly: the plan needs $19M for the year; Q1's $4.2M and 8% quarterly growth "
             "reach about $18.6M, so break-even by Q4 is tight but plausible.",
             ("Board-deck-2026-03.pdf", "Q1-2026-results.pdf")),
        Turn("What would close the gap?",
             "About $0.4M more revenue, or holding opex flat: the hiring freeze on "
             "non-engineering roles already points that way.",
             ("Board-deck-2026-03.pdf", "Q1-2026-results.pdf")),
        Turn("Summarise that for the board in two sentences.",
             "At Q1's pace we reach $18.6M against a $19M plan. Holding opex flat through "
             "Q3 keeps break-even by Q4 within reach.", ("Board-deck-2026-03.pdf",)),
    ], FINANCE_KB, "high", {"channel": "web", "team": "finance"}),
    Script("demo-fx", "alice", "finance_agent", "Invoice in euros", [
        Turn("What is invoice INV-2291 in euros?",
             "INV-2291 is $12,400, which is €11,470 at today's rate of 0.925.", (),
             ("convert_currency", {"amount": 12400, "from": "USD", "to": "EUR"},
              {"amount": 11470.0, "rate": 0.925})),
        Turn("Can the customer still get a refund on it?",
             "It was invoiced 41 days ago, so an enterprise refund would be prorated.",
             ("Refund-policy.md",)),
    ], FINANCE_KB, "low", {"channel": "web", "team": "finance"}),
    Script("demo-travel", "alice", "finance_agent", "Conference travel", [
        Turn("Do I need approval for a $2,100 conference trip?",
             "Yes: travel over $1,500 needs your manager's approval before booking.",
             ("Travel-expenses.md",)),
    ], FINANCE_KB, None, {"channel": "slack", "team": "finance"}),
    Script("demo-order-late", "bob", "support_agent", "Late order 8812", [
        Turn("Where is order 8812? The customer says it is late.",
             "Order 8812 shipped standard on Monday and is due Friday; it is not late yet.",
             ("Shipping-FAQ.md",),
             ("get_order_status", {"order_id": "8812"},
              {"status": "shipped", "carrier": "UPS", "eta": "Friday"})),
        Turn("They want it faster. Can we upgrade to express?",
             "It has already shipped, so it cannot be upgraded; offer a shipping refund.",
             ("Shipping-FAQ.md",)),
    ], SUPPORT_KB, None, {"channel": "zendesk", "team": "support"}),
    Script("demo-damaged", "bob", "support_agent", "Damaged item", [
        Turn("A customer received a cracked mug. What do we do?",
             "Ask for a photo of the damage; once we have it we replace it at no cost.",
             ("Returns.md",)),
        Turn("They sent the photo. Open a ticket for the replacement.",
             "Ticket T-4410 is open in the fulfilment queue for a free replacement.",
             ("Returns.md",),
             ("create_ticket", {"queue": "fulfilment", "subject": "Replace cracked mug"},
              {"ticket_id": "T-4410", "queue": "fulfilment"})),
    ], SUPPORT_KB, None, {"channel": "zendesk", "team": "support"}),
    Script("demo-billing", "bob", "support_agent", "Double charge", [
        Turn("A customer was charged twice for May.",
             "", ("Escalation.md",), None, "agent backend timed out after 60 s"),
        Turn("Try again: a customer was charged twice for May.",
             "Payment issues go to billing with priority high; ticket T-4415 is open there.",
             ("Escalation.md",),
             ("create_ticket", {"queue": "billing", "priority": "high",
                                "subject": "Charged twice for May"},
              {"ticket_id": "T-4415", "queue": "billing"})),
    ], SUPPORT_KB, None, {"channel": "email", "team": "support"}),
    Script("demo-returns", "bob", "support_agent", "Return window", [
        Turn("How long do customers have to return an item?",
             "60 days, in the original packaging.", ("Returns.md",)),
        Turn("And if they lost the packaging?",
             "The policy needs the original packaging; a team lead can make an exception.",
             ("Returns.md", "Escalation.md")),
        Turn("Who is the team lead on shift?",
             "I cannot see the shift rota; ask in #support-leads.", ()),
    ], SUPPORT_KB, None, {"channel": "zendesk", "team": "support"}),
    Script("demo-escalation", "bob", "research_agent", "Escalation backlog", [
        Turn("We have 14 tickets older than 48 hours. What should happen?",
             "All 14 should be escalated to a team lead; start with the payment ones, "
             "which go to billing at priority high.", ("Escalation.md",)),
        Turn("Draft the note to the leads.",
             "Fourteen tickets have waited over 48 hours and are now yours; the payment ones "
             "are in billing at high priority. Please pick them up today.",
             ("Escalation.md",)),
    ], SUPPORT_KB, "medium", {"channel": "slack", "team": "support"}),
]
# fmt: on


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def _time(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _chunks(rng: random.Random, script: Script, turn: Turn, run_id: str) -> list[dict[str, Any]]:
    """Eight candidates by retrieval score; the reranker separates the relevant ones better
    than the embedding does, and its best four make the context."""
    assert script.kb is not None
    kb_id, kb_name, sources = script.kb
    passages = [(src, n, text) for src, texts in sources.items() for n, text in enumerate(texts)]
    relevant = [p for p in passages if p[0] in turn.sources]
    others = [p for p in passages if p[0] not in turn.sources]
    picked = relevant[:5] + rng.sample(others, min(8 - len(relevant[:5]), len(others)))
    chunks = []
    for src, n, text in picked:
        hit = src in turn.sources
        retrieval = rng.gauss(0.74, 0.05) if hit else rng.gauss(0.64, 0.06)
        reranker = rng.gauss(0.80, 0.09) if hit else rng.gauss(0.28, 0.14)
        chunks.append(
            {
                "id": f"{src.rsplit('.', 1)[0].lower()}-p{n + 1}",
                "text": text,
                "score": None,
                "retrieval_score": round(min(max(retrieval, 0.3), 0.95), 3),
                "reranker_score": round(min(max(reranker, 0.01), 0.99), 3),
                "source_id": f"src-{_uuid(kb_id, src)[:8]}",
                "source_name": src,
                "knowledge_base_id": kb_id,
                "kb_name": kb_name,
                "indexing_strategy": "chunk_embed",
                "meta": {"page": n + 1, "run": run_id[-6:]},
                "included_in_context": False,
            }
        )
    chunks.sort(key=lambda c: -c["retrieval_score"])  # stored in retrieval rank order
    for c in sorted(chunks, key=lambda c: -c["reranker_score"])[:4]:
        c["included_in_context"] = True
    for c in chunks:
        c["score"] = c["reranker_score"]
    return chunks


_REASONING_TOKENS = {"low": (64, 256), "medium": (256, 1024), "high": (1024, 4096)}


def _session(rng: random.Random, script: Script, start: datetime) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    t = start
    for k, turn in enumerate(script.turns):
        run_id = f"{script.id}-run-{k + 1}"
        created = t
        latency = timedelta(seconds=rng.uniform(1.5, 9.0))
        done = created + latency
        added = [_message(script, len(messages), "user", turn.question, run_id, created)]
        chunks = _chunks(rng, script, turn, run_id) if script.kb and turn.sources else []
        if turn.tool is not None and turn.failed is None:
            name, arguments, result = turn.tool
            call_id = "call_" + _uuid(run_id, name).replace("-", "")[:12]
            middle = created + latency / 2
            call = _message(script, len(messages) + 1, "assistant", None, run_id, middle)
            call["tool_calls"] = [{"id": call_id, "name": name,
                                   "arguments": _json(arguments)}]  # fmt: skip
            result_message = _message(script, len(messages) + 2, "tool", _json(result),
                                      run_id, middle)  # fmt: skip
            result_message |= {"name": name, "tool_call_id": call_id}
            added += [call, result_message]
        if turn.failed is None:
            added.append(_message(script, len(messages) + len(added), "assistant", turn.answer,
                                  run_id, done))  # fmt: skip
        # Tokens as an OpenAI-style backend counts them: the system prompt and tool
        # definitions, every earlier message (the history is replayed), the chunks put in
        # the context, the question; the answer (and a tool call) out.
        history = sum(len((m["content"] or "").split()) for m in messages)
        context = sum(len(c["text"].split()) for c in chunks if c["included_in_context"])
        prompt = 420 + (history + context + len(turn.question.split())) * 4 // 3 + 24 * k
        output = len(turn.answer.split()) * 4 // 3 + 6 if turn.failed is None else 0
        if turn.tool is not None:
            output += 40
        reasoning_tokens = rng.randint(*_REASONING_TOKENS[script.effort]) if script.effort else 0
        messages += added
        runs.append({
            "id": run_id,
            "agent_id": script.agent,
            "status": "FAILED" if turn.failed else "COMPLETED",
            "input": turn.question,
            "content": None if turn.failed else turn.answer,
            "error": turn.failed,
            "reasoning": None if script.effort is None
            else {"enabled": True, "effort": script.effort, "budget_tokens": None},
            "usage": None if turn.failed else {
                "input_tokens": prompt,
                "output_tokens": output,
                "reasoning_tokens": reasoning_tokens if script.effort else None,
                "total_tokens": prompt + output + reasoning_tokens,
            },
            "created_at": _time(created),
            "started_at": _time(created),
            "completed_at": _time(done),
            "retrieval_diagnostics": None if not chunks else {
                "query": turn.question,
                "top_k": len(chunks),
                "reranker": "bge-reranker-v2-m3",
                "index": f"{script.kb[0] if script.kb else ''}-v3",
                "latency_ms": rng.randint(40, 180),
            },
            "retrieved_context": chunks,
        })  # fmt: skip
        t = done + timedelta(seconds=rng.uniform(20, 400))
    return {
        "format": FORMAT,
        "id": script.id,
        "user_id": script.user,
        "agent_id": script.agent,
        "title": script.title,
        "metadata": script.metadata,
        "created_at": _time(start),
        "updated_at": runs[-1]["completed_at"],
        "messages": messages,
        "runs": runs,
    }


def _message(
    script: Script, n: int, role: str, content: str | None, run_id: str, t: datetime
) -> dict[str, Any]:
    return {"id": _uuid(script.id, str(n)), "role": role, "content": content, "run_id": run_id,
            "created_at": _time(t), "name": None, "tool_calls": [],
            "tool_call_id": None}  # fmt: skip


def _json(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))


def demo_sessions(now: datetime | None = None) -> list[dict[str, Any]]:
    """The demo sessions, as export records, in the fortnight before ``now``."""
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    rng = random.Random(13)  # noqa: S311 - demo data, the same on every call
    records = []
    for n, script in enumerate(SCRIPTS):
        start = now - timedelta(days=14) + timedelta(days=n * 1.3, hours=rng.uniform(8, 17))
        records.append(_session(rng, script, start))
    return records
