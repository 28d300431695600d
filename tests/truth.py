"""Known truth the tests share: the design order of the labels (DESIGN section 2), the
release's emotion strings, the validation split's emotion counts of the IndoMER release, and
one annotator sheet whose merge is known by hand. Written out here, not read from
labels.yaml, so a test fails when the package drifts from the design."""

from __future__ import annotations

EMOTIONS = ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")
#: The release's (Indonesian) strings of :data:`EMOTIONS`, in that order.
EMOTIONS_RELEASE = (
    "kemarahan", "jijik", "ketakutan", "kebahagiaan", "netral", "kesedihan", "surprise",
)
#: Emotion counts of the release's validation split (356 clips).
VAL_EMOTION = {
    "neutral": 262, "happiness": 39, "sadness": 32, "anger": 13, "disgust": 5, "fear": 4,
    "surprise": 1,
}
SHEET_HEADER = (
    "id,annotator,role,sentiment_score,emotion,emotion_intensity,"
    "text_sentiment,audio_sentiment,video_sentiment\n"
)
#: clip_2_Cooking_1 (release: netral): two of three say happiness, a majority;
#: clip_2_Cooking_2: three different emotions, so the expert (E) decides: sadness.
SHEET = SHEET_HEADER + (
    "clip_2_Cooking_1,A1,annotator,0.5,kebahagiaan,2,positif,positif,positif\n"
    "clip_2_Cooking_1,A2,annotator,0.6,senang,3,positif,positif,netral\n"
    "clip_2_Cooking_1,A3,annotator,0,netral,0,netral,netral,positif\n"
    "clip_2_Cooking_2,A1,annotator,-0.5,sedih,1,negatif,negatif,negatif\n"
    "clip_2_Cooking_2,A2,annotator,-0.7,marah,2,negatif,negatif,negatif\n"
    "clip_2_Cooking_2,A3,annotator,0,netral,0,netral,negatif,netral\n"
    "clip_2_Cooking_2,E,expert,-0.4,kesedihan,2,negatif,negatif,negatif\n"
)
