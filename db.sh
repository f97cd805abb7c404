# Where the corpora live on this machine (ESPnet's convention); sourced by run.sh.
# Experiments never name these paths, so moving a corpus changes no experiment's data key.
# Relative paths are relative to this recipe's root. A conf may still set its own in data.options.
VPC2024_DATA=${VPC2024_DATA:-corpora/vpc2024/data}        # the unzipped data.zip of the VPC 2024 release
VPC2024_AUDIO=${VPC2024_AUDIO:-corpora/vpc2024}           # libri_dev/ and libri_test/ audio from the organizers
LIBRISPEECH=${LIBRISPEECH:-corpora/LibriSpeech}           # OpenSLR layout (train-clean-360, train-clean-100)
IEMOCAP=${IEMOCAP:-corpora/IEMOCAP}                       # USC layout, Session1..Session5
VOXCELEB1=${VOXCELEB1:-corpora/VoxCeleb1/dev/wav}         # vox1_dev_wav.zip unzipped: id10001/<video>/00001.wav
VOXCELEB1_META=${VOXCELEB1_META:-corpora/VoxCeleb1/vox1_meta.csv}  # gives spk2gender
