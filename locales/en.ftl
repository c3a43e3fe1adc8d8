# Guichet USSD and SMS texts, English.
# Every message must fit one USSD screen (182 GSM-7 characters, or 80 UTF-16
# units once any character is outside GSM-7) with its menu lines; keep them
# short. Variables are never wrapped in isolation marks (the gateway turns
# them off: they would force every SMS into UCS-2).

## This language's own name, as shown in the language menu
language-name = English

## Language choice (first dial, and "change language")
# The menu lists all seven native names under this title; "Français" makes the
# screen UCS-2 (80 units) and the seven numbered names take 71 of them, so this
# title must stay within 9 characters in every language.
language-menu = Language:

## Main menu
main-menu-title = Guichet - public services
main-new = New request
main-track = Track a request
main-mine = My requests
main-rate = Rate a service
main-language = Language
main-mediator = Act for a citizen

## Pagination and navigation, shown as menu lines
nav-more = More
nav-back = Back
nav-home = Menu

## Resuming an interrupted session
resume-offer = You did not finish your last request.
resume-continue = Continue
resume-restart = Start again

## New request
choose-service = Choose the service:
choose-locality = Choose your locality:
enter-description = Describe your request in a few words, or send 0 to skip:
confirm-request = Confirm: { $service }, { $locality }.
confirm-yes = Confirm
confirm-no = Cancel
request-created = Request registered. Your reference: { $reference }. Keep it to track your request.
request-cancelled = Request cancelled. Dial again when you are ready.

## Tracking
enter-reference = Enter the reference of your request:
reference-invalid = This reference is not valid: check the digits and try again.
reference-unknown = No request has this reference.
track-status = Request { $reference }: { $status }. { $next }
track-status-own = Request { $reference } ({ $service }): { $status }. { $next }

## Statuses and what comes next
status-received = received
status-assigned = assigned to an agent
status-in_progress = in progress
status-waiting_for_citizen = waiting for you
status-resolved = resolved
status-closed = closed
status-cancelled = cancelled
next-received = An agent will take it up soon.
next-assigned = An agent will contact you.
next-in_progress = An agent is working on it.
next-waiting_for_citizen = Please contact the service or visit the mobile unit.
next-resolved = Please rate the service.
next-closed = Thank you.
next-cancelled = Dial again to make a new request.

## My requests
my-requests-title = { $count ->
    [one] Your request:
   *[other] Your { $count } requests:
}
my-requests-none = You have no request yet.

## Rating
rate-choose = Which request do you want to rate?
rate-none = You have no resolved request to rate.
rate-ask = How satisfied are you with request { $reference }? 1 (not at all) to 5 (very):
rate-thanks = Thank you for your rating.

## Language
language-saved = Language saved.

## Mediators
mediator-enter-pin = Enter your mediator PIN:
mediator-pin-wrong = Wrong PIN.
mediator-enter-phone = Enter the citizen's phone number:
mediator-phone-invalid = This phone number is not valid.
mediator-request-created = Request { $reference } registered for { $phone }. The citizen will receive an SMS to confirm.

## Errors
invalid-choice = Invalid choice.
service-unavailable = Sorry, the service is unavailable. Please try again later.
too-many-attempts = Too many attempts. Please try again in a few minutes.

## SMS keywords (what citizens type; English words are always accepted too)
keyword-track = TRACK
keyword-rate = RATE
keyword-stop = STOP
keyword-help = HELP
keyword-yes = YES
keyword-no = NO

## SMS
sms-request-created = Guichet: your request { $reference } ({ $service }) is registered. We will text you when it moves.
sms-status = Guichet: request { $reference }: { $status }. { $next }
sms-status-changed = Guichet: your request { $reference } is now { $status }. { $next }
sms-rate-invite = Guichet: request { $reference } is resolved. Reply { $keyword } { $reference } and a digit from 1 to 5 to rate the service.
sms-rated = Guichet: thank you for rating request { $reference }.
sms-stopped = Guichet: you will no longer receive messages. Send { $keyword } to start again.
sms-help = Guichet: send { $track } and your reference to track a request, { $rate } reference and 1-5 to rate, { $stop } to stop messages.
sms-unknown-reference = Guichet: no request has the reference { $reference }.
sms-invalid-reference = Guichet: { $reference } is not a valid reference. Check the digits.
sms-mediator-consent = Guichet: { $mediator } filed request { $reference } ({ $service }) for you. Reply { $yes } { $reference } to confirm or { $no } { $reference } to refuse.
sms-consent-confirmed = Guichet: thank you, request { $reference } is confirmed.
sms-consent-refused = Guichet: request { $reference } is cancelled as you asked.
