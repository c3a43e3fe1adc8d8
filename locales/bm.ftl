# Guichet, USSD ni SMS sɛbɛnw, Bamanankan.
#
# NEEDS REVIEW BY A NATIVE SPEAKER: the whole file. It was written by a
# non-native speaker in the official Mali spelling (ɛ ɔ ɲ ŋ, long vowels
# doubled, no tone marks). Terms the author is least sure of are marked
# "REVIEW:" above the message.
#
# Budget: ɛ ɔ ɲ ŋ are not in GSM-7, so nearly every screen is UCS-2 and holds
# only 80 characters, menu lines included. Keep every label short.

## Nin kan tɔgɔ, kanw ka menu kɔnɔ
language-name = Bamanankan

## Kan sugandili (sɛbɛnden 9 dɔrɔn: a filɛ en.ftl la)
language-menu = Kan:

## Menu kunba
main-menu-title = Guichet
# REVIEW: "ɲinini" (request), plural "ɲininiw".
main-new = Ɲinini kura
main-track = Kɔlɔsili
main-mine = N ka ɲininiw
# REVIEW: "jateminɛ" (evaluate) for rating a service.
main-rate = Jateminɛ
main-language = Kan
# REVIEW: "mɔgɔ dɛmɛ" (help someone) for acting on a citizen's behalf.
main-mediator = Mɔgɔ dɛmɛ

## Ɲɛw ni taama
# REVIEW: "Tugu" (follow) rather than "Wɛrɛw": an ɛ here would make every
# menu page UCS-2 (80 instead of 182 characters).
nav-more = Tugu
nav-back = Segin
nav-home = Menu

## Ɲinini tigɛlen taa a fɛ
resume-offer = I ma i ka ɲinini laban dafa.
resume-continue = Taa a fɛ
resume-restart = Daminɛ kokura

## Ɲinini kura
choose-service = Baara sugandi:
choose-locality = I ka dugu sugandi:
enter-description = I ka ɲinini ɲɛfɔ kuma dama dama la, walima 0 ci ka tɛmɛ:
# REVIEW: "sɛmɛntiya" (confirm), "dabila" (cancel).
confirm-request = A sɛmɛntiya: { $service }, { $locality }.
confirm-yes = Sɛmɛntiya
confirm-no = A dabila
request-created = I ka ɲinini sɛbɛnna. A nimɔrɔ: { $reference }. A mara.
request-cancelled = Ɲinini dabilara. I ka wele kokura i labɛnnen tuma.

## Kɔlɔsili
enter-reference = I ka ɲinini nimɔrɔ sɛbɛn:
reference-invalid = Nin nimɔrɔ tɛ ɲɛ: jateden lajɛ ka segin a kan.
reference-unknown = Ɲinini si tɛ nin nimɔrɔ in na.
track-status = { $reference }: { $status }. { $next }
track-status-own = { $reference } ({ $service }): { $status }. { $next }

## Ɲinini bɛ min ani min bɛ na
status-received = a sɔrɔla
# REVIEW: "baarakɛla" (worker) for the agent.
status-assigned = a dira baarakɛla ma
status-in_progress = a baara bɛ kɛ
status-waiting_for_citizen = an bɛ i makɔnɔ
status-resolved = a ɲɛnabɔra
status-closed = a datugura
status-cancelled = a dabilara
next-received = Baarakɛla bɛ a ta sɔɔni.
next-assigned = Baarakɛla bɛna i wele.
next-in_progress = Baarakɛla bɛ a la.
# REVIEW: "call the office or go there": the mobile unit is not named, for room.
next-waiting_for_citizen = Baarada wele walima taa yen.
next-resolved = Baara jateminɛ.
next-closed = I ni ce.
next-cancelled = Wele kokura ka ɲinini kura kɛ.

## N ka ɲininiw (Bamanankan: "other" dɔrɔn)
my-requests-title = { $count ->
   *[other] I ka ɲininiw ({ $count }):
}
my-requests-none = Ɲinini si tɛ i bolo fɔlɔ.

## Jateminɛ
rate-choose = I bɛ ɲinini jumɛn jateminɛ?
rate-none = Ɲinini ɲɛnabɔlen si tɛ i bolo.
# REVIEW: "i wasara cogo di" (how satisfied are you).
rate-ask = { $reference }: i wasara cogo di? 1 (fiyewu) ka se 5 (kosɛbɛ):
rate-thanks = I ni ce i ka jateminɛ na.

## Kan
language-saved = Kan marala.

## Dɛmɛbaga (mediators)
mediator-enter-pin = I ka PIN sɛbɛn:
mediator-pin-wrong = PIN tɛ ɲɛ.
mediator-enter-phone = Mɔgɔ in ka telefɔni nimɔrɔ sɛbɛn:
mediator-phone-invalid = Nin telefɔni nimɔrɔ tɛ ɲɛ.
mediator-request-created = { $reference } sɛbɛnna { $phone } ye. SMS bɛna ci a ma.

## Fili
invalid-choice = Sugandili tɛ ɲɛ.
service-unavailable = Hakɛto, baara tɛ sɔrɔ sisan. I ka segin a kan kɔfɛ.
too-many-attempts = I y'a kɛ siɲɛ caman. I ka segin a kan miniti dama kɔfɛ.

## SMS kumaw (ASCII sɛbɛndenw dɔrɔn, kuma kelen; angilɛ kumaw fana bɛ sɔn)
# REVIEW: keywords are Bambara words without ɛ ɔ (ASCII only): kɔlɔsi, jateminɛ, jɔ, dɛmɛ.
keyword-track = KOLOSI
keyword-rate = JATEMINE
keyword-stop = JO
keyword-help = DEME
keyword-yes = AWO
keyword-no = AYI

## SMS
sms-request-created = Guichet: i ka ɲinini { $reference } ({ $service }) sɛbɛnna. An bɛna SMS ci i ma a yɛlɛmali kɔ.
sms-status = Guichet: ɲinini { $reference }: { $status }. { $next }
sms-status-changed = Guichet: i ka ɲinini { $reference }: { $status }. { $next }
sms-rate-invite = Guichet: ɲinini { $reference } ɲɛnabɔra. A jaabi { $keyword } { $reference } ni jateden 1 ka se 5 ma walasa ka baara jateminɛ.
sms-rated = Guichet: i ni ce ɲinini { $reference } jateminɛ na.
sms-stopped = Guichet: cikan si tɛna ci i ma tun. { $keyword } ci walasa ka daminɛ kokura.
sms-help = Guichet: { $track } ci ni i ka nimɔrɔ ye ka ɲinini kɔlɔsi, { $rate } nimɔrɔ ni 1-5 ka jateminɛ kɛ, { $stop } ka cikanw jɔ.
sms-unknown-reference = Guichet: ɲinini si tɛ nimɔrɔ { $reference } na.
sms-invalid-reference = Guichet: { $reference } tɛ nimɔrɔ ɲuman ye. Jateden lajɛ.
sms-mediator-consent = Guichet: { $mediator } ye { $reference } ({ $service }) kɛ i tɔgɔ la. Jaabi { $yes } { $reference } ka sɔn walima { $no } { $reference } ka ban.
sms-consent-confirmed = Guichet: i ni ce, ɲinini { $reference } sɛmɛntiyara.
sms-consent-refused = Guichet: ɲinini { $reference } dabilara i ko a ɲininen don cogo min na.
