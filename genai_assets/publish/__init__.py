"""Publishing a trained model to the Hugging Face Hub: model card, staging folder, upload client."""
