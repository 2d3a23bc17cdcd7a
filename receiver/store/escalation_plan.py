"""Former home of `receiver.escalation_plan` (domain logic, not storage); names re-exported."""

from receiver.escalation_plan import ActRequest as ActRequest
from receiver.escalation_plan import ActResult as ActResult
from receiver.escalation_plan import EscalationRules as EscalationRules
from receiver.escalation_plan import Message as Message
from receiver.escalation_plan import TimelineEvent as TimelineEvent
from receiver.escalation_plan import Verb as Verb
