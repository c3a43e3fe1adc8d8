# Guichet, binndi USSD e SMS, Pulaar.
#
# NEEDS REVIEW BY A NATIVE SPEAKER: the whole file. It was written by a
# non-native speaker in the Senegal/Mauritania Pulaar (Fuuta Tooro) spelling
# (ɓ ɗ ŋ ƴ ñ, long vowels doubled; Guinea and Mali write ɲ for ñ). Terms the
# author is least sure of are marked "REVIEW:" above the message.
#
# Budget: ɓ ɗ ŋ ƴ are not in GSM-7, so nearly every screen is UCS-2 and holds
# only 80 characters, menu lines included. Keep every label short.

## Innde ɗemngal ngal, e menu ɗemɗe
language-name = Pulaar

## Suɓaade ɗemngal (alkulal 9 tan: ƴeew en.ftl)
language-menu = Ɗemngal:

## Menu mawngu
main-menu-title = Guichet
# REVIEW: "ɗaɓɓaande" (request), plural "ɗaɓɓaaɗe".
main-new = Ɗaɓɓaande hesere
main-track = Ƴeewto
main-mine = Ɗaɓɓaaɗe
# REVIEW: "hiisaade carwol" (assess the service) for rating.
main-rate = Hiisa
main-language = Ɗemngal
# REVIEW: "wallu neɗɗo" (help a person) for acting on a citizen's behalf.
main-mediator = Wallu neɗɗo

## Hello ɗe e yaadu
# "Yeeso" (forward) rather than "Ɓeydu": a hooked letter here would make
# every menu page UCS-2 (80 instead of 182 characters).
nav-more = Yeeso
nav-back = Rutto
nav-home = Menu

## Jokkude ɗaɓɓaande taƴaande
resume-offer = A timminaani ɗaɓɓaande maa sakkitiinde.
resume-continue = Jokku
resume-restart = Fuɗɗito

## Ɗaɓɓaande hesere
choose-service = Suɓo carwol:
choose-locality = Suɓo nokku maa:
enter-description = Sifo ɗaɓɓaande maa e konngi seeɗa, walla neldu 0 ngam diwde:
# REVIEW: "teeŋtin" (confirm), "haaytu" (cancel).
confirm-request = Teeŋtin: { $service }, { $locality }.
confirm-yes = Teeŋtin
confirm-no = Haaytu
request-created = Ɗaɓɓaande winndaama. Limoore maa: { $reference }. Jogo nde.
request-cancelled = Ɗaɓɓaande haaytaama. Noddu kadi so a heɓii.

## Ƴeewtude
enter-reference = Winndu limoore ɗaɓɓaande maa:
reference-invalid = Limoore nde moƴƴaani: ƴeewto limle ɗe, eto kadi.
reference-unknown = Alaa ɗaɓɓaande jogiinde limoore ndee.
track-status = { $reference }: { $status }. { $next }
track-status-own = { $reference } ({ $service }): { $status }. { $next }

## No ɗaɓɓaande nde woorri e ko rewata
status-received = heɓaama
# REVIEW: "gollowo" (worker) for the agent.
status-assigned = okkaama gollowo
status-in_progress = ina golleede
status-waiting_for_citizen = ina fadi maa
status-resolved = ñawndaama
status-closed = uddaama
status-cancelled = haaytaama
next-received = Gollowo jogitoto nde law.
next-assigned = Gollowo noddete.
next-in_progress = Gollowo ina golla e mayre.
# REVIEW: "call the service or go there": the mobile unit is not named, for room.
next-waiting_for_citizen = Noddu carwol walla yah ton.
next-resolved = Hiisa carwol ngol.
next-closed = A jaaraama.
next-cancelled = Noddu kadi ngam ɗaɓɓaande hesere.

## Ɗaɓɓaaɗe am (Pulaar: "one" ko 0 e 1)
my-requests-title = { $count ->
    [one] Ɗaɓɓaande maa:
   *[other] Ɗaɓɓaaɗe maa ({ $count }):
}
my-requests-none = A alaa ɗaɓɓaande tawo.

## Hiisaade
rate-choose = Ɗaɓɓaande ndeye njiɗ-ɗaa hiisaade?
rate-none = A alaa ɗaɓɓaande ñawndaande ngam hiisaade.
# REVIEW: "hol no weltorɗaa" (how satisfied are you).
rate-ask = { $reference }: hol no weltorɗaa? 1 (hay huunde) haa 5 (no feewi):
rate-thanks = A jaaraama e hiisa maa.

## Ɗemngal
language-saved = Ɗemngal danndaama.

## Gollooɓe ballal (mediators)
mediator-enter-pin = Winndu PIN maa:
mediator-pin-wrong = PIN moƴƴaani.
mediator-enter-phone = Winndu limoore telefon neɗɗo oo:
mediator-phone-invalid = Limoore telefon nde moƴƴaani.
mediator-request-created = { $reference } winndaama ngam { $phone }. Neɗɗo oo heɓay SMS.

## Juumre
invalid-choice = Suɓaande moƴƴaani.
service-unavailable = Yaafo, carwol ngol alaa jooni. Eto kadi ɓaawo.
too-many-attempts = Eto ɗuuɗii. Eto kadi ɓaawo hojomaaje seeɗa.

## Konngi SMS (alkule ASCII tan, konngol gootol; konngi Engele ɗi kadi ina jaɓaa)
# REVIEW: keywords are Pulaar words without their hooked letters (ASCII only).
keyword-track = TOKKO
keyword-rate = HIISA
keyword-stop = DARO
keyword-help = BALLAL
keyword-yes = EEY
keyword-no = ALAA

## SMS
sms-request-created = Guichet: ɗaɓɓaande maa { $reference } ({ $service }) winndaama. Min ndokkete SMS so nde yahii yeeso.
sms-status = Guichet: ɗaɓɓaande { $reference }: { $status }. { $next }
sms-status-changed = Guichet: ɗaɓɓaande maa { $reference }: { $status }. { $next }
sms-rate-invite = Guichet: ɗaɓɓaande { $reference } ñawndaama. Jaabo { $keyword } { $reference } e limre 1 haa 5 ngam hiisaade carwol ngol.
sms-rated = Guichet: a jaaraama e hiisaade ɗaɓɓaande { $reference }.
sms-stopped = Guichet: a heɓataa kadi mesaasi. Neldu { $keyword } ngam fuɗɗitde.
sms-help = Guichet: neldu { $track } e limoore maa ngam ƴeewtude, { $rate } limoore e 1-5 ngam hiisaade, { $stop } ngam daraade mesaasi.
sms-unknown-reference = Guichet: alaa ɗaɓɓaande jogiinde limoore { $reference }.
sms-invalid-reference = Guichet: { $reference } wonaa limoore moƴƴere. Ƴeewto limle ɗe.
# Worded without ɓ ɗ ŋ ƴ so that it stays GSM-7 (2 SMS instead of 3).
sms-mediator-consent = Guichet: { $mediator } winndii { $reference } ({ $service }) e innde maa. Jaabo { $yes } { $reference } so ko goonga, walla { $no } { $reference } so wonaa non.
sms-consent-confirmed = Guichet: a jaaraama, ɗaɓɓaande { $reference } teeŋtinaama.
sms-consent-refused = Guichet: ɗaɓɓaande { $reference } haaytaama, no njaɓɗaa non.
