# Guichet, textes USSD et SMS, français.
#
# Relecture : rédigé par un francophone non spécialiste de l'administration ;
# à faire valider pour le vocabulaire administratif local (Sénégal, Mali,
# Niger...) : les termes marqués « REVIEW » ci-dessous.
#
# Contraintes : un écran USSD tient 182 caractères GSM-7, mais seulement 80
# dès qu'un caractère est hors GSM-7. é è à ù sont GSM-7 ; ç â ê î ô û œ ë ï
# et les majuscules accentuées autres que É ne le sont pas : on les évite
# dans les écrans USSD (« reçue » → « enregistrée »). Deux-points et point
# d'interrogation précédés d'une espace ordinaire, jamais insécable.

## Nom de la langue, dans le menu des langues
language-name = Français

## Choix de la langue (9 caractères au plus : voir en.ftl)
language-menu = Langue :

## Menu principal
main-menu-title = Guichet - services publics
main-new = Nouvelle demande
main-track = Suivre une demande
main-mine = Mes demandes
main-rate = Noter un service
main-language = Langue
# REVIEW: "médiateur" / "agir pour un citoyen" : terme retenu par le projet ?
main-mediator = Agir pour un citoyen

## Pagination et navigation
nav-more = Suite
nav-back = Retour
nav-home = Menu

## Reprise d'une session interrompue
resume-offer = Vous n'avez pas terminé votre dernière demande.
resume-continue = Continuer
resume-restart = Recommencer

## Nouvelle demande
choose-service = Choisissez le service :
choose-locality = Choisissez votre localité :
enter-description = Décrivez votre demande en quelques mots, ou envoyez 0 pour passer :
confirm-request = Confirmer : { $service }, { $locality }.
confirm-yes = Confirmer
confirm-no = Annuler
request-created = Demande enregistrée. Votre référence : { $reference }. Gardez-la pour suivre votre demande.
request-cancelled = Demande annulée. Vous pourrez recommencer quand vous voudrez.

## Suivi
enter-reference = Entrez la référence de votre demande :
reference-invalid = Cette référence n'est pas valide : vérifiez les chiffres et réessayez.
reference-unknown = Aucune demande n'a cette référence.
track-status = Demande { $reference } : { $status }. { $next }
track-status-own = Demande { $reference } ({ $service }) : { $status }. { $next }

## États (accordés avec « demande ») et suite
status-received = enregistrée
status-assigned = confiée à un agent
status-in_progress = en cours de traitement
status-waiting_for_citizen = en attente de votre part
status-resolved = résolue
status-closed = terminée
status-cancelled = annulée
next-received = Un agent la prendra en charge sous peu.
next-assigned = Un agent va vous contacter.
next-in_progress = Un agent s'en occupe.
# REVIEW: "unité mobile" : nom local du service itinérant ?
next-waiting_for_citizen = Merci de contacter le service ou de passer à l'unité mobile.
next-resolved = Merci de noter le service.
next-closed = Merci.
next-cancelled = Recomposez le code pour faire une nouvelle demande.

## Mes demandes (en français, 0 et 1 sont au singulier)
my-requests-title = { $count ->
    [one] Votre demande :
   *[other] Vos { $count } demandes :
}
my-requests-none = Vous n'avez encore aucune demande.

## Notation
rate-choose = Quelle demande voulez-vous noter ?
rate-none = Vous n'avez aucune demande résolue à noter.
rate-ask = Votre satisfaction pour la demande { $reference } ? De 1 (pas du tout) à 5 (très satisfait) :
rate-thanks = Merci pour votre note.

## Langue
language-saved = Langue enregistrée.

## Médiateurs
mediator-enter-pin = Entrez votre code PIN de médiateur :
mediator-pin-wrong = Code PIN incorrect.
mediator-enter-phone = Entrez le numéro de téléphone du citoyen :
mediator-phone-invalid = Ce numéro de téléphone n'est pas valide.
mediator-request-created = Demande { $reference } enregistrée pour le { $phone }. Le citoyen recevra un SMS pour confirmer.

## Erreurs
invalid-choice = Choix non valide.
service-unavailable = Désolé, le service est indisponible. Veuillez réessayer plus tard.
too-many-attempts = Trop d'essais. Veuillez réessayer dans quelques minutes.

## Mots-clés SMS (lettres ASCII, un seul mot ; les mots anglais restent acceptés)
keyword-track = SUIVI
keyword-rate = NOTE
keyword-stop = STOP
keyword-help = AIDE
keyword-yes = OUI
keyword-no = NON

## SMS
sms-request-created = Guichet : votre demande { $reference } ({ $service }) est enregistrée. Nous vous écrirons à chaque étape.
sms-status = Guichet : demande { $reference } : { $status }. { $next }
sms-status-changed = Guichet : votre demande { $reference } est maintenant { $status }. { $next }
sms-rate-invite = Guichet : la demande { $reference } est résolue. Répondez { $keyword } { $reference } et un chiffre de 1 à 5 pour noter le service.
sms-rated = Guichet : merci d'avoir noté la demande { $reference }.
sms-stopped = Guichet : vous ne recevrez plus de messages. Envoyez { $keyword } pour les recevoir de nouveau.
sms-help = Guichet : envoyez { $track } et votre référence pour suivre une demande, { $rate } référence et 1-5 pour noter, { $stop } pour ne plus recevoir de messages.
sms-unknown-reference = Guichet : aucune demande n'a la référence { $reference }.
sms-invalid-reference = Guichet : { $reference } n'est pas une référence valide. Vérifiez les chiffres.
sms-mediator-consent = Guichet : { $mediator } a déposé la demande { $reference } ({ $service }) pour vous. Répondez { $yes } { $reference } pour confirmer ou { $no } { $reference } pour refuser.
sms-consent-confirmed = Guichet : merci, la demande { $reference } est confirmée.
sms-consent-refused = Guichet : la demande { $reference } est annulée comme vous l'avez demandé.
