# Guichet, mbind yu USSD ak SMS, Wolof.
#
# NEEDS REVIEW BY A NATIVE SPEAKER: the whole file. It was written by a
# non-native speaker following the official CLAD spelling (à é ë ó ñ ŋ,
# long vowels doubled). Terms the author is least sure of are marked
# "REVIEW:" above the message.
#
# Budget: ë, ó and ŋ are not in GSM-7, so a screen with one of them holds only
# 80 characters (182 otherwise). Screens that must list several lines (main
# menu, confirmation) were worded without them where Wolof allows it; never
# write "e" for "ë" to save room: pick another word or cut.

## Turu làkk wii, ci menu làkk yi
language-name = Wolof

## Tànn làkk (9 araf lu ëpp: xoolal en.ftl)
language-menu = Làkk:

## Menu bu mag bi
# REVIEW: "sarwiisu nguur" for "public services".
main-menu-title = Guichet - sarwiisu nguur
main-new = Laaj bu bees
main-track = Topp sa laaj
main-mine = Samay laaj
# REVIEW: "natt" (measure, assess) for rating a service.
main-rate = Natt ab sarwiis
main-language = Làkk
# REVIEW: "laaj ci turu kenn" (a request in someone's name) for mediators.
main-mediator = Laaj ci turu kenn

## Xët yi ak dem-dikk
nav-more = Yeneen
nav-back = Dellu
nav-home = Menu

## Jàppaat laaj bu taxaw
# REVIEW: negative form "mataluloo" (you did not complete).
resume-offer = Mataluloo sa laaj bu mujj bi.
resume-continue = Wéy
resume-restart = Tàmbaliwaat

## Laaj bu bees
choose-service = Tànnal sarwiis bi:
choose-locality = Tànnal sa dëkk:
enter-description = Leeralal sa laaj ci ay baat yu néew, walla bindal 0 ngir romb:
# REVIEW: "dëggal" (confirm) and "neenal" (cancel).
confirm-request = Dëggal: { $service }, { $locality }.
confirm-yes = Dëggal
confirm-no = Neenal
request-created = Sa laaj bindu na. Sa nimero: { $reference }. Denc ko ngir topp sa laaj.
request-cancelled = Laaj bi neenu na. Mën nga delloo saa su la neexee.

## Topp
enter-reference = Bindal nimero bi ñu la joxoon:
reference-invalid = Nimero bii baaxul: seetal ay siifar yi te jéemaat.
reference-unknown = Amul benn laaj bu am nimero bii.
track-status = Laaj { $reference }: { $status }. { $next }
track-status-own = { $reference } ({ $service }): { $status }. { $next }

## Fan la laaj bi nekk ak li ciy topp
status-received = jot nanu ko
# REVIEW: "liggéeykat" (worker) for the agent.
status-assigned = jox nanu ko ab liggéeykat
status-in_progress = ñu ngi ci liggéey
status-waiting_for_citizen = ñu ngi la xaar
status-resolved = faj nanu ko
status-closed = jeex na
status-cancelled = neenu na
next-received = Liggéeykat dina ko jàpp léegi.
next-assigned = Dinanu la woo.
next-in_progress = Liggéeykat moo ko yor.
# REVIEW: "call us or come": the mobile unit is not named, for room.
next-waiting_for_citizen = Woowal nu walla nga ñëw.
next-resolved = Jox sa xalaat ci sarwiis bi.
next-closed = Jërëjëf.
# REVIEW: "woowaatal" (call again) for dialling the code again.
next-cancelled = Woowaatal ngir def beneen laaj.

## Samay laaj (Wolof amul "one": benn bind rekk)
my-requests-title = { $count ->
   *[other] Say laaj ({ $count }):
}
my-requests-none = Amaguloo benn laaj.

## Natt
rate-choose = Ban laaj nga bëgg a natt?
rate-none = Amuloo benn laaj bu ñu faj bu nga mën a natt.
rate-ask = Naka nga gise laaj { $reference }? 1 (baaxul dara) ba 5 (baax na lool):
rate-thanks = Jërëjëf ci sa natt.

## Làkk
language-saved = Làkk bi dencu na.

## Ndaw yi (mediators)
mediator-enter-pin = Bindal sa kood PIN:
mediator-pin-wrong = PIN bi baaxul.
mediator-enter-phone = Bindal nimero telefonu nit ki:
mediator-phone-invalid = Nimero telefon bii baaxul.
mediator-request-created = Laaj { $reference } bindu na ngir { $phone }. Nit ki dina jot SMS ngir nangu ko.

## Njuumte
invalid-choice = Tànn bi baaxul.
service-unavailable = Baal nu, sarwiis bi jàppul fi mu nekk. Jéemaatal ci kanam.
# REVIEW: "minit" for minutes.
too-many-attempts = Jéem nga lu bare. Jéemaatal fii ak ay minit.

## Baat yu SMS (araf ASCII rekk, benn baat; baat yu angale yi it ñu ngi nangu)
keyword-track = TOPP
keyword-rate = NATT
keyword-stop = TAXAWAL
keyword-help = DIMBALI
keyword-yes = WAAW
keyword-no = DEDET

## SMS
sms-request-created = Guichet: sa laaj { $reference } ({ $service }) bindu na. Dinanu la bind bu dara soppikoo.
sms-status = Guichet: laaj { $reference }: { $status }. { $next }
sms-status-changed = Guichet: sa laaj { $reference }: { $status }. { $next }
sms-rate-invite = Guichet: laaj { $reference } faj nanu ko. Tontul { $keyword } { $reference } ak benn siifar ci 1 ba 5 ngir natt sarwiis bi.
sms-rated = Guichet: jërëjëf ci natt laaj { $reference }.
sms-stopped = Guichet: doo jotati benn bataaxal. Yónnee { $keyword } ngir tàmbaliwaat.
sms-help = Guichet: yónnee { $track } ak sa nimero ngir topp laaj, { $rate } nimero ak 1-5 ngir natt, { $stop } ngir taxawal bataaxal yi.
sms-unknown-reference = Guichet: amul benn laaj bu am nimero { $reference }.
sms-invalid-reference = Guichet: { $reference } du nimero bu baax. Seetal ay siifar yi.
sms-mediator-consent = Guichet: { $mediator } bind na laaj { $reference } ({ $service }) ci sa tur. Tontul { $yes } { $reference } ngir nangu walla { $no } { $reference } ngir bañ.
sms-consent-confirmed = Guichet: jërëjëf, laaj { $reference } dëggu na.
sms-consent-refused = Guichet: laaj { $reference } neenu na, ni nga ko laaje.
