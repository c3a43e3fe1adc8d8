# Guichet, maandishi ya USSD na SMS, Kiswahili.
#
# REVIEW: written by a non-native speaker in standard (Tanzania/Kenya)
# Swahili. Grammar follows the li-/ma- class of "ombi/maombi". Needs review by
# a native speaker, especially the terms marked "REVIEW:" (administrative
# vocabulary differs between Tanzania, Kenya and the DRC).
#
# Everything here is GSM-7 (182 characters per screen). Never type the curly
# apostrophe ’ (ng’ombe): write ' , or the whole message becomes UCS-2.

## Jina la lugha hii, kwenye menyu ya lugha
language-name = Kiswahili

## Chaguo la lugha (herufi 9 au chache: tazama en.ftl)
language-menu = Lugha:

## Menyu kuu
main-menu-title = Guichet - huduma za umma
main-new = Ombi jipya
main-track = Fuatilia ombi
main-mine = Maombi yangu
# REVIEW: "tathmini" (evaluate) vs "pima" for rating a service.
main-rate = Tathmini huduma
main-language = Lugha
# REVIEW: the mediator acts on behalf of a citizen ("kwa niaba ya raia").
main-mediator = Ombi kwa niaba ya raia

## Kurasa na urambazaji
nav-more = Zaidi
nav-back = Rudi
nav-home = Menyu

## Kuendelea na kikao kilichokatika
resume-offer = Hukumaliza ombi lako la mwisho.
resume-continue = Endelea
resume-restart = Anza upya

## Ombi jipya
choose-service = Chagua huduma:
choose-locality = Chagua eneo lako:
enter-description = Eleza ombi lako kwa maneno machache, au tuma 0 kuruka:
confirm-request = Thibitisha: { $service }, { $locality }.
confirm-yes = Thibitisha
confirm-no = Ghairi
request-created = Ombi limesajiliwa. Namba yako ya kumbukumbu: { $reference }. Ihifadhi ili kufuatilia ombi lako.
request-cancelled = Ombi limeghairiwa. Piga tena ukiwa tayari.

## Ufuatiliaji
enter-reference = Weka namba ya kumbukumbu ya ombi lako:
reference-invalid = Namba hii ya kumbukumbu si sahihi: hakiki tarakimu na ujaribu tena.
reference-unknown = Hakuna ombi lenye namba hii ya kumbukumbu.
track-status = Ombi { $reference }: { $status }. { $next }
track-status-own = Ombi { $reference } ({ $service }): { $status }. { $next }

## Hali za ombi na hatua inayofuata
status-received = limepokelewa
# REVIEW: "afisa" for the agent handling the case.
status-assigned = limepewa afisa
status-in_progress = linashughulikiwa
status-waiting_for_citizen = linakusubiri
status-resolved = limetatuliwa
status-closed = limefungwa
status-cancelled = limeghairiwa
next-received = Afisa atalishughulikia hivi karibuni.
next-assigned = Afisa atawasiliana nawe.
next-in_progress = Afisa analishughulikia.
# REVIEW: "kituo kinachohamahama" for the mobile unit.
next-waiting_for_citizen = Tafadhali wasiliana na huduma au tembelea kituo kinachohamahama.
next-resolved = Tafadhali tathmini huduma.
next-closed = Asante.
next-cancelled = Piga tena ili kutuma ombi jipya.

## Maombi yangu
my-requests-title = { $count ->
    [one] Ombi lako:
   *[other] Maombi yako { $count }:
}
my-requests-none = Bado huna ombi lolote.

## Tathmini
rate-choose = Ungependa kutathmini ombi lipi?
rate-none = Huna ombi lililotatuliwa la kutathmini.
rate-ask = Umeridhika kiasi gani na ombi { $reference }? 1 (hata kidogo) hadi 5 (sana):
rate-thanks = Asante kwa tathmini yako.

## Lugha
language-saved = Lugha imehifadhiwa.

## Wawakilishi
# REVIEW: "wakala" for mediator.
mediator-enter-pin = Weka PIN yako ya wakala:
mediator-pin-wrong = PIN si sahihi.
mediator-enter-phone = Weka namba ya simu ya raia:
mediator-phone-invalid = Namba hii ya simu si sahihi.
mediator-request-created = Ombi { $reference } limesajiliwa kwa { $phone }. Raia atapokea SMS ya kuthibitisha.

## Makosa
invalid-choice = Chaguo si sahihi.
service-unavailable = Samahani, huduma haipatikani. Tafadhali jaribu tena baadaye.
too-many-attempts = Majaribio mengi mno. Tafadhali jaribu tena baada ya dakika chache.

## Maneno ya SMS (herufi za ASCII, neno moja; maneno ya Kiingereza yanakubaliwa pia)
keyword-track = FUATILIA
keyword-rate = TATHMINI
keyword-stop = ACHA
keyword-help = MSAADA
keyword-yes = NDIYO
keyword-no = HAPANA

## SMS
sms-request-created = Guichet: ombi lako { $reference } ({ $service }) limesajiliwa. Tutakutumia SMS hali yake ikibadilika.
sms-status = Guichet: ombi { $reference }: { $status }. { $next }
sms-status-changed = Guichet: ombi lako { $reference } sasa { $status }. { $next }
sms-rate-invite = Guichet: ombi { $reference } limetatuliwa. Jibu { $keyword } { $reference } na tarakimu kutoka 1 hadi 5 kutathmini huduma.
sms-rated = Guichet: asante kwa kutathmini ombi { $reference }.
sms-stopped = Guichet: hutapokea tena ujumbe. Tuma { $keyword } kuanza tena.
sms-help = Guichet: tuma { $track } na namba ya ombi kulifuatilia, { $rate } namba na 1-5 kutathmini, { $stop } kusitisha ujumbe.
sms-unknown-reference = Guichet: hakuna ombi lenye namba { $reference }.
sms-invalid-reference = Guichet: { $reference } si namba sahihi ya ombi. Hakiki tarakimu.
sms-mediator-consent = Guichet: { $mediator } amewasilisha ombi { $reference } ({ $service }) kwa niaba yako. Jibu { $yes } { $reference } kuthibitisha au { $no } { $reference } kukataa.
sms-consent-confirmed = Guichet: asante, ombi { $reference } limethibitishwa.
sms-consent-refused = Guichet: ombi { $reference } limeghairiwa kama ulivyoomba.
