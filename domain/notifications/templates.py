"""Every message the case lifecycle sends, as data: a subject, a body (letter and email) and a
short SMS text, written in plain English with named {variables}.

Placeholders: `{name}` inserts a value; `{name|money}` formats integer pence as pounds
(£1,234.56); `{name|date}` formats an ISO date as "3 March 2026"; `{name|lines}` joins a list of
lines (a calculation explanation) one per line. Dotted names reach into a record:
`{recipient.full_name}` is the addressee, `{other.full_name}` the other parent (already redacted
for the addressee by `domain.safeguarding.redact_for_viewer`).

Templates never mention the other parent's address, phone, employer or bank details: there is
nothing to mention, because every record a template sees has been through the redaction first.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Template:
    name: str
    subject: str
    body: str
    sms: str


_FOOTER = (
    "\n\nIf anything here is wrong, tell us within 30 days. You can reply online, or call us on "
    "the number on our website.\n\nChild Maintenance Service\nCase reference: {case_reference}"
)

TEMPLATES: dict[str, Template] = {t.name: t for t in (
    Template(
        "application_received",
        "We have received your application",
        "Dear {recipient.full_name},\n\nThank you for applying to the Child Maintenance Service on "
        "{received_on|date}. We will now contact the other parent and work out how much child "
        "maintenance should be paid. We will write to you again when we have done this.\n\n"
        "You do not need to contact the other parent yourself." + _FOOTER,
        "CMS: we received your application on {received_on|date}. Ref {case_reference}. "
        "We will write to you again soon.",
    ),
    Template(
        "notice_to_paying_parent",
        "Someone has applied for child maintenance",
        "Dear {recipient.full_name},\n\nAn application for child maintenance has been made for "
        "children who we understand you are a parent of. We will work out what "
        "you should pay using your income from HM Revenue and Customs. The calculation will take "
        "effect from {effective_date|date}.\n\nPlease tell us within 14 days if your income has "
        "changed by 25% or more, or if the children stay with you overnight." + _FOOTER,
        "CMS: a child maintenance application names you. Ref {case_reference}. Please check your "
        "letter or account within 14 days.",
    ),
    Template(
        "calculation_decision",
        "Your child maintenance calculation",
        "Dear {recipient.full_name},\n\nWe have worked out the child maintenance to be paid from "
        "{effective_date|date}: {weekly_amount|money} a week.\n\nHow we worked it out:\n"
        "{explanation|lines}" + _FOOTER,
        "CMS: child maintenance is {weekly_amount|money} a week from {effective_date|date}. "
        "Ref {case_reference}. Your letter explains how we worked it out.",
    ),
    Template(
        "payment_schedule",
        "Your payment schedule",
        "Dear {recipient.full_name},\n\nThis is the payment schedule from {effective_date|date}. The "
        "next payment is {next_payment_pence|money}, due on {next_due_on|date}. After that, "
        "{instalment_pence|money} is due {frequency_words}, {how_paid}.\n\n{payment_note}" + _FOOTER,
        "CMS: next payment {next_payment_pence|money} due {next_due_on|date}, then "
        "{instalment_pence|money} {frequency_words}. Ref {case_reference}.",
    ),
    Template(
        "payment_received",
        "Payment received",
        "Dear {recipient.full_name},\n\nWe received a payment of {amount|money} on "
        "{received_on|date}. Thank you." + _FOOTER,
        "CMS: payment of {amount|money} received on {received_on|date}. Ref {case_reference}.",
    ),
    Template(
        "payment_missed",
        "A payment has been missed",
        "Dear {recipient.full_name},\n\nThe payment of {amount|money} due on {due_on|date} has not "
        "arrived. The amount now owed is {arrears|money}.\n\nPlease pay it, or contact us within "
        "7 days to arrange how you will pay. If we do not hear from you we may take steps to "
        "collect it." + _FOOTER,
        "CMS: the payment of {amount|money} due {due_on|date} has not arrived. Please pay or "
        "contact us within 7 days. Ref {case_reference}.",
    ),
    Template(
        "change_outcome",
        "The result of the change you told us about",
        "Dear {recipient.full_name},\n\nWe have looked at the change of {change_kind} reported on "
        "{reported_on|date}. Our decision: {outcome}.\n\n{outcome_reason}" + _FOOTER,
        "CMS: we have decided on the {change_kind} change reported {reported_on|date}: {outcome}. "
        "Ref {case_reference}.",
    ),
    Template(
        "annual_review",
        "Your annual review",
        "Dear {recipient.full_name},\n\nWe have reviewed your child maintenance, as we do every "
        "year. From {effective_date|date} the amount is {weekly_amount|money} a week.\n\n"
        "How we worked it out:\n{explanation|lines}" + _FOOTER,
        "CMS: after the annual review, child maintenance is {weekly_amount|money} a week from "
        "{effective_date|date}. Ref {case_reference}.",
    ),
    Template(
        "service_type_change",
        "We will now collect and pass on child maintenance",
        "Dear {recipient.full_name},\n\nFrom {effective_date|date} child maintenance will be paid "
        "through us (Collect & Pay) instead of directly between the parents (Direct Pay), because "
        "{switch_reason}.\n\nCollect & Pay has collection fees: the paying parent pays an extra 20% "
        "and the receiving parent receives 4% less. From {effective_date|date} the paying parent pays "
        "{paying_parent_pays_pence|money} a week and the receiving parent receives "
        "{receiving_parent_receives_pence|money} a week. Payments due before then stay Direct Pay."
        "\n\nHow we worked it out:\n{explanation|lines}" + _FOOTER,
        "CMS: from {effective_date|date} child maintenance is paid through us (Collect & Pay), with "
        "collection fees. Ref {case_reference}. Your letter explains why.",
    ),
    Template(
        "enforcement_step",
        "Action we are taking to collect what is owed",
        "Dear {recipient.full_name},\n\nThe amount owed is {arrears|money}. Because it has not been "
        "paid, we are taking this step: {step}.\n\n{step_detail}\n\nIf you pay what is owed, or "
        "keep to a plan you agree with us, we will stop." + _FOOTER,
        "CMS: {arrears|money} is owed and we are taking this step: {step}. Ref {case_reference}.",
    ),
    Template(
        "case_closed",
        "Your child maintenance case has closed",
        "Dear {recipient.full_name},\n\nYour case closed on {closed_on|date} because {reason}.\n\n"
        "Any amount still owed remains collectable." + _FOOTER,
        "CMS: your case closed on {closed_on|date}. Ref {case_reference}.",
    ),
)}
