# Guichet, rubutun USSD da SMS, Hausa.
#
# NEEDS REVIEW BY A NATIVE SPEAKER: the whole file. It was written by a
# non-native speaker in standard (Kano) Hausa spelling with the hooked letters
# ɓ ɗ ƙ, addressing the citizen with the polite plural "ku". Terms the author
# is least sure of are marked "REVIEW:" above the message.
#
# Budget: ɓ ɗ ƙ are not in GSM-7, so most screens are UCS-2 and hold only 80
# characters, menu lines included. Keep every label short.

## Sunan wannan harshe, a menu na harsuna
language-name = Hausa

## Zaɓin harshe (haruffa 9 kawai: duba en.ftl)
language-menu = Harshe:

## Babban menu
main-menu-title = Guichet
main-new = Sabuwar buƙata
# REVIEW: "bibiya" (follow up) for tracking a request.
main-track = Bibiya
main-mine = Buƙatuna
main-rate = Kimantawa
main-language = Harshe
# REVIEW: "wakilci" (representation) for acting on a citizen's behalf.
main-mediator = Wakilci

## Shafuka da kewayawa
nav-more = Gaba
nav-back = Baya
nav-home = Menu

## Ci gaba da zaman da ya katse
resume-offer = Ba ku gama buƙatarku ta ƙarshe ba.
resume-continue = Ci gaba
resume-restart = Sake farawa

## Sabuwar buƙata
choose-service = Zaɓi sabis:
choose-locality = Zaɓi yankinku:
enter-description = Bayyana buƙatarku a taƙaice, ko ku aika 0 don tsallakewa:
confirm-request = Tabbatar: { $service }, { $locality }.
confirm-yes = Tabbatar
confirm-no = Soke
request-created = An yi rajistar buƙatarku. Lambarta: { $reference }. Ku ajiye ta.
request-cancelled = An soke buƙatar. Ku sake kira idan kun shirya.

## Bibiya
enter-reference = Shigar da lambar buƙatarku:
reference-invalid = Lambar nan ba daidai ba ce: duba lambobin ku sake gwadawa.
reference-unknown = Babu buƙata mai wannan lamba.
track-status = Buƙata { $reference }: { $status }. { $next }
track-status-own = { $reference } ({ $service }): { $status }. { $next }

## Matsayin buƙata da abin da zai biyo baya
status-received = an karɓa
# REVIEW: "jami'i" (official) for the agent.
status-assigned = an ba wa jami'i
status-in_progress = ana aiki a kai
status-waiting_for_citizen = ana jiranku
status-resolved = an warware
status-closed = an rufe
status-cancelled = an soke
next-received = Jami'i zai duba ta da wuri.
next-assigned = Jami'i zai tuntuɓe ku.
next-in_progress = Jami'i yana kula da ita.
# REVIEW: "call the office or go there": the mobile unit is not named, for room.
next-waiting_for_citizen = Ku kira ofishin ko ku je can.
next-resolved = Ku kimanta sabis ɗin.
next-closed = Mun gode.
next-cancelled = Ku sake kira don sabuwar buƙata.

## Buƙatuna (Hausa: "one" don 1 kawai)
my-requests-title = { $count ->
    [one] Buƙatarku:
   *[other] Buƙatunku ({ $count }):
}
my-requests-none = Ba ku da buƙata tukuna.

## Kimantawa
rate-choose = Wace buƙata kuke son kimantawa?
rate-none = Ba ku da buƙatar da aka warware don kimantawa.
rate-ask = { $reference }: yaya kuka gamsu? 1 (ko kaɗan) zuwa 5 (sosai):
rate-thanks = Mun gode da kimantawarku.

## Harshe
language-saved = An adana harshe.

## Wakilai (mediators)
mediator-enter-pin = Shigar da PIN ɗinku:
mediator-pin-wrong = PIN ba daidai ba ne.
mediator-enter-phone = Shigar da lambar wayar mutumin:
mediator-phone-invalid = Lambar waya ba daidai ba ce.
mediator-request-created = An yi rajistar { $reference } don { $phone }. Zai sami SMS.

## Kurakurai
invalid-choice = Zaɓi ba daidai ba.
service-unavailable = Yi haƙuri, sabis ba ya aiki yanzu. Ku sake gwadawa anjima.
too-many-attempts = Ƙoƙari ya yi yawa. Ku sake gwadawa bayan 'yan mintuna.

## Kalmomin SMS (haruffan ASCII kawai, kalma ɗaya; ana karɓar kalmomin Turanci ma)
keyword-track = BIBIYA
keyword-rate = KIMANTA
keyword-stop = TSAYA
keyword-help = TAIMAKO
# REVIEW: "EE" for ee (yes) and "AA" for a'a (no): the apostrophe is left out
# so that the keyword is letters only.
keyword-yes = EE
keyword-no = AA

## SMS
sms-request-created = Guichet: an yi rajistar buƙatarku { $reference } ({ $service }). Za mu aiko muku SMS idan ta motsa.
sms-status = Guichet: buƙata { $reference }: { $status }. { $next }
sms-status-changed = Guichet: buƙatarku { $reference }: { $status }. { $next }
sms-rate-invite = Guichet: an warware buƙata { $reference }. Ku amsa { $keyword } { $reference } da lamba daga 1 zuwa 5 don kimanta sabis.
sms-rated = Guichet: mun gode da kimanta buƙata { $reference }.
sms-stopped = Guichet: ba za ku ƙara samun saƙonni ba. Ku aika { $keyword } don sake farawa.
sms-help = Guichet: ku aika { $track } da lambarku don bibiya, { $rate } lamba da 1-5 don kimantawa, { $stop } don dakatar da saƙonni.
sms-unknown-reference = Guichet: babu buƙata mai lamba { $reference }.
sms-invalid-reference = Guichet: { $reference } ba lamba ce mai inganci ba. Duba lambobin.
# Worded without ɓ ɗ ƙ so that it stays GSM-7 (2 SMS instead of 3).
sms-mediator-consent = Guichet: { $mediator } ya yi rajistar { $reference } ({ $service }) a madadinku. Ku amsa { $yes } { $reference } don amincewa ko { $no } { $reference } don soke ta.
sms-consent-confirmed = Guichet: mun gode, an tabbatar da buƙata { $reference }.
sms-consent-refused = Guichet: an soke buƙata { $reference } kamar yadda kuka nema.
